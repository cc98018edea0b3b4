package lake

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// day0 is 2026-11-22 23:59:00 UTC: test readings straddle midnight, so they span two date partitions.
var day0 = time.Date(2026, 11, 22, 23, 59, 0, 0, time.UTC).UnixMicro()

// testReadings returns n readings from 5 sensors, 2 metrics, one per sensor and metric per second,
// in arrival order (time first), so the writer has to sort them.
func testReadings(n int) []Reading { return ReadingsOf(testReadingRows(n)) }

// testReadingRows is testReadings as file rows.
func testReadingRows(n int) []ReadingRow {
	rows := make([]ReadingRow, 0, n)
	for i := range n {
		s := i % 5
		m := []string{"temperature", "humidity"}[(i/5)%2]
		ts := day0 + int64(i/10)*1_000_000 + int64(s)*1234
		unit := ""
		if m == "temperature" {
			unit = "C"
		}
		rows = append(rows, ReadingRow{
			SensorID: fmt.Sprintf("sensor-%d", 4-s), Metric: m, TS: ts, Value: float64(i) / 4,
			Unit: unit, ReceivedAt: ts + 2500, IngestID: int64(1000 + i), Flags: flagSets[i%8],
		})
	}
	return rows
}

func TestReadingsReadBackWithDuckDB(t *testing.T) {
	for _, k := range lakeKinds {
		t.Run(k.name, func(t *testing.T) {
			ctx := context.Background()
			lk, _ := k.open(t)
			w, err := NewWriter(ctx, lk, ReadingsSpec(), testConfig())
			if err != nil {
				t.Fatal(err)
			}
			const n = 3000 // 300 s from 23:59: 60 s on the first day, 240 on the second
			want := testReadingRows(n)
			for _, r := range ReadingsOf(want) {
				w.Add(r)
			}
			if rows, bytes, oldest := w.Buffered(); rows != n || bytes != int64(n)*40 || oldest.IsZero() {
				t.Fatalf("Buffered = %d rows, %d bytes, oldest %v; want %d rows, %d bytes (40 a Reading)", rows, bytes, oldest, n, n*40)
			}
			v, err := w.Commit(ctx, "decoder-p0", 41)
			if err != nil {
				t.Fatal(err)
			}
			if v != 1 {
				t.Fatalf("Commit returned version %d, want 1", v)
			}
			if rows, bytes, oldest := w.Buffered(); rows != 0 || bytes != 0 || !oldest.IsZero() {
				t.Fatalf("after Commit, Buffered = %d, %d, %v; want empty", rows, bytes, oldest)
			}

			log := readLog(t, lk, "readings")
			if len(log) != 2 {
				t.Fatalf("log has %d versions, want 2", len(log))
			}
			files := localFiles(t, lk, "readings")
			if len(files) != 2 {
				t.Fatalf("%d live files, want one per day: %v", len(files), files)
			}
			for i, day := range []string{"date=2026-11-22", "date=2026-11-23"} {
				if filepath.Base(filepath.Dir(files[i])) != day {
					t.Fatalf("file %s is not in %s/", files[i], day)
				}
				if !strings.HasPrefix(filepath.Base(files[i]), "part-0000000000000000") || !strings.HasSuffix(files[i], ".parquet") {
					t.Fatalf("file name %s is not part-<seq>-<uuid>.parquet", files[i])
				}
			}
			db := duck(t)
			all := scan(files)
			if got := queryInt(t, db, "SELECT count(*) FROM "+all); got != n {
				t.Fatalf("DuckDB reads %d rows, want %d", got, n)
			}
			types := columnTypes(t, db, "SELECT * FROM "+all)
			wantTypes := map[string]string{
				"sensor_id": "VARCHAR", "metric": "VARCHAR", "ts": "TIMESTAMP WITH TIME ZONE", "value": "DOUBLE",
				"unit": "VARCHAR", "received_at": "TIMESTAMP WITH TIME ZONE", "ingest_id": "BIGINT", "flags": "VARCHAR[]", "date": "DATE",
			}
			if fmt.Sprint(types) != fmt.Sprint(wantTypes) {
				t.Fatalf("column types %v, want %v", types, wantTypes)
			}
			byID := map[int64]ReadingRow{}
			for _, r := range want {
				byID[r.IngestID] = r
			}
			seen := 0
			for fi, f := range files {
				rows, err := db.Query(`SELECT sensor_id, metric, epoch_us(ts), value, coalesce(unit, '<null>'), epoch_us(received_at), ingest_id,
					array_to_string(flags, ','), flags IS NULL, strftime(ts, '%Y-%m-%d'), CAST(date AS VARCHAR)
					FROM ` + scanRowNumbers(f) + ` ORDER BY file_row_number`)
				if err != nil {
					t.Fatal(err)
				}
				var prev *ReadingRow
				for rows.Next() {
					var r ReadingRow
					var unit, flags, tsDay, partDay string
					var flagsNull bool
					if err := rows.Scan(&r.SensorID, &r.Metric, &r.TS, &r.Value, &unit, &r.ReceivedAt, &r.IngestID, &flags, &flagsNull, &tsDay, &partDay); err != nil {
						t.Fatal(err)
					}
					w, ok := byID[r.IngestID]
					if !ok {
						t.Fatalf("file %d holds ingest_id %d, which was never added", fi, r.IngestID)
					}
					delete(byID, r.IngestID)
					wantUnit := w.Unit
					if wantUnit == "" {
						wantUnit = "<null>"
					}
					if r.SensorID != w.SensorID || r.Metric != w.Metric || r.TS != w.TS || r.Value != w.Value || unit != wantUnit ||
						r.ReceivedAt != w.ReceivedAt || flags != strings.Join(w.Flags, ",") || flagsNull {
						t.Fatalf("row %d = %+v unit %q flags %q (null %v), want %+v", r.IngestID, r, unit, flags, flagsNull, w)
					}
					if tsDay != partDay {
						t.Fatalf("row %d with ts on %s is in partition date=%s", r.IngestID, tsDay, partDay)
					}
					if prev != nil && cmp.Or(strings.Compare(prev.SensorID, r.SensorID), strings.Compare(prev.Metric, r.Metric), cmp.Compare(prev.TS, r.TS)) > 0 {
						t.Fatalf("file %d not sorted by (sensor_id, metric, ts): %+v before %+v", fi, *prev, r)
					}
					prev = &r
					seen++
				}
				if err := rows.Err(); err != nil {
					t.Fatal(err)
				}
				rows.Close()
			}
			if seen != n || len(byID) != 0 {
				t.Fatalf("read %d rows; %d added rows missing", seen, len(byID))
			}
			// Row groups (1024 rows here) of a sorted file cover disjoint sensor ranges, so a filter on
			// one sensor skips the others by their statistics.
			rg, err := db.Query(`SELECT row_group_id, stats_min_value, stats_max_value FROM parquet_metadata(?)
				WHERE path_in_schema = 'sensor_id' ORDER BY row_group_id`, files[1])
			if err != nil {
				t.Fatal(err)
			}
			var bounds [][2]string
			for rg.Next() {
				var id int64
				var lo, hi string
				if err := rg.Scan(&id, &lo, &hi); err != nil {
					t.Fatal(err)
				}
				bounds = append(bounds, [2]string{lo, hi})
			}
			rg.Close()
			if len(bounds) != 3 { // 2400 rows on the second day
				t.Fatalf("second file has %d row groups, want 3: %v", len(bounds), bounds)
			}
			for i := 1; i < len(bounds); i++ {
				if bounds[i-1][1] > bounds[i][0] {
					t.Fatalf("row groups overlap on sensor_id: %v", bounds)
				}
			}
			// Empty flag lists are empty lists, not NULL; "" units are NULL.
			if got := queryInt(t, db, "SELECT count(*) FROM "+all+" WHERE len(flags) = 0"); got != n/8 {
				t.Fatalf("%d rows with empty flags, want %d", got, n/8)
			}
			if got := queryInt(t, db, "SELECT count(*) FROM "+all+" WHERE unit IS NULL"); got != n/2 {
				t.Fatalf("%d rows with NULL unit, want %d", got, n/2)
			}
		})
	}
}

func TestRawQuarantineSensorsReadBack(t *testing.T) {
	ctx := context.Background()
	lk, _ := lakeKinds[1].open(t)
	db := duck(t)

	// raw/: two hours, payload bytes untouched (including invalid UTF-8 and NUL).
	rw, err := NewWriter(ctx, lk, RawSpec(), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	h := time.Date(2026, 11, 24, 9, 59, 58, 0, time.UTC).UnixMicro()
	var raws []RawRow
	for i := range 6 {
		raws = append(raws, RawRow{IngestID: int64(i), ReceivedAt: h + int64(i)*1_000_000, Source: "mqtt", Topic: fmt.Sprintf("plant/%d", i%2), QoS: int32(i % 2),
			Payload: []byte(fmt.Sprintf("{\"v\":%d}\xff\x00", i))})
	}
	for _, r := range raws {
		rw.Add(r)
	}
	if _, err := rw.Commit(ctx, "archiver-p0", 5); err != nil {
		t.Fatal(err)
	}
	files := localFiles(t, lk, "raw")
	wantDirs := []string{"date=2026-11-24/hour=09", "date=2026-11-24/hour=10"}
	if len(files) != 2 {
		t.Fatalf("raw files %v, want two hours", files)
	}
	for i, f := range files {
		if got := filepath.ToSlash(filepath.Join(filepath.Base(filepath.Dir(filepath.Dir(f))), filepath.Base(filepath.Dir(f)))); got != wantDirs[i] {
			t.Fatalf("raw file %d in %s, want %s", i, got, wantDirs[i])
		}
	}
	rows, err := db.Query("SELECT ingest_id, epoch_us(received_at), source, topic, qos, payload, hour FROM " + scan(files) + " ORDER BY ingest_id")
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for rows.Next() {
		var r RawRow
		var hour int
		if err := rows.Scan(&r.IngestID, &r.ReceivedAt, &r.Source, &r.Topic, &r.QoS, &r.Payload, &hour); err != nil {
			t.Fatal(err)
		}
		w := raws[i]
		if r.IngestID != w.IngestID || r.ReceivedAt != w.ReceivedAt || r.Source != w.Source || r.Topic != w.Topic || r.QoS != w.QoS || string(r.Payload) != string(w.Payload) {
			t.Fatalf("raw row %d = %+v, want %+v", i, r, w)
		}
		if wantHour := []int{9, 9, 10, 10, 10, 10}[i]; hour != wantHour {
			t.Fatalf("raw row %d in hour %d, want %d", i, hour, wantHour)
		}
		i++
	}
	rows.Close()
	if i != len(raws) {
		t.Fatalf("read %d raw rows, want %d", i, len(raws))
	}
	if ty := columnTypes(t, db, "SELECT * FROM "+scan(files)); ty["payload"] != "BLOB" || ty["received_at"] != "TIMESTAMP WITH TIME ZONE" || ty["qos"] != "INTEGER" || ty["hour"] != "VARCHAR" {
		// DuckDB's hive inference keeps "09" as text (it would lose the zero as a number); the Delta
		// log types hour as integer ("9").
		t.Fatalf("raw column types %v", ty)
	}

	// quarantine/ and sensors/.
	qw, err := NewWriter(ctx, lk, QuarantineSpec(), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	qw.Add(QuarantineRow{IngestID: 7, ReceivedAt: h, Source: "mqtt", Topic: "t", Payload: []byte("{bad"), Reason: "invalid_json", Detail: "unexpected end"})
	if _, err := qw.Commit(ctx, "decoder-p0", 7); err != nil {
		t.Fatal(err)
	}
	var reason, detail string
	var payload []byte
	if err := db.QueryRow("SELECT reason, detail, payload FROM "+scan(localFiles(t, lk, "quarantine"))).Scan(&reason, &detail, &payload); err != nil {
		t.Fatal(err)
	}
	if reason != "invalid_json" || detail != "unexpected end" || string(payload) != "{bad" {
		t.Fatalf("quarantine row = %q %q %q", reason, detail, payload)
	}
	sw, err := NewWriter(ctx, lk, SensorsSpec(), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	sw.Add(SensorsRow{Digest: "abc", LoadedAt: h, Origin: "sensors.json", SensorCount: 3, Raw: []byte(`[{"id":"1"}]`)})
	if _, err := sw.Commit(ctx, "registry-abc", 0); err != nil {
		t.Fatal(err)
	}
	sfiles := localFiles(t, lk, "sensors")
	if len(sfiles) != 1 || filepath.Base(filepath.Dir(sfiles[0])) != "sensors" {
		t.Fatalf("sensors files %v, want one at the table root", sfiles)
	}
	var count int32
	var loaded int64
	var raw []byte
	if err := db.QueryRow("SELECT sensor_count, epoch_us(loaded_at), raw FROM "+scan(sfiles)).Scan(&count, &loaded, &raw); err != nil {
		t.Fatal(err)
	}
	if count != 3 || loaded != h || string(raw) != `[{"id":"1"}]` {
		t.Fatalf("sensors row = %d %d %q", count, loaded, raw)
	}
}

// TestSchemaString checks each table's metaData: the schemaString parses (independently of package
// delta) and lists the columns with their Delta types, then the partition columns.
func TestSchemaString(t *testing.T) {
	cases := []struct {
		table string
		make  func(context.Context, *Lake) error
		want  string // name:type:nullable, …
		parts []string
	}{
		{"raw", func(ctx context.Context, lk *Lake) error {
			_, err := NewWriter(ctx, lk, RawSpec(), testConfig())
			return err
		},
			"ingest_id:long:false received_at:timestamp:false source:string:false topic:string:false qos:integer:false payload:binary:false date:date:true hour:integer:true",
			[]string{"date", "hour"}},
		{"readings", func(ctx context.Context, lk *Lake) error {
			_, err := NewWriter(ctx, lk, ReadingsSpec(), testConfig())
			return err
		},
			`sensor_id:string:false metric:string:false ts:timestamp:false value:double:false unit:string:true received_at:timestamp:false ingest_id:long:false flags:{"containsNull":false,"elementType":"string","type":"array"}:false date:date:true`,
			[]string{"date"}},
		{"quarantine", func(ctx context.Context, lk *Lake) error {
			_, err := NewWriter(ctx, lk, QuarantineSpec(), testConfig())
			return err
		},
			"ingest_id:long:false received_at:timestamp:false source:string:false topic:string:false payload:binary:false reason:string:false detail:string:false date:date:true",
			[]string{"date"}},
		{"sensors", func(ctx context.Context, lk *Lake) error {
			_, err := NewWriter(ctx, lk, SensorsSpec(), testConfig())
			return err
		},
			"digest:string:false loaded_at:timestamp:false origin:string:false sensor_count:integer:false raw:binary:false",
			[]string{}},
	}
	for _, c := range cases {
		t.Run(c.table, func(t *testing.T) {
			lk, _ := lakeKinds[0].open(t)
			if err := c.make(context.Background(), lk); err != nil {
				t.Fatal(err)
			}
			log := readLog(t, lk, c.table)
			if len(log) != 1 {
				t.Fatalf("new table has %d versions, want 1", len(log))
			}
			var md *struct {
				SchemaString     string   `json:"schemaString"`
				PartitionColumns []string `json:"partitionColumns"`
			}
			protocols := 0
			for _, e := range log[0] {
				if e.MetaData != nil {
					md = e.MetaData
				}
				if e.Protocol != nil {
					protocols++
					if e.Protocol.MinReaderVersion != 1 || e.Protocol.MinWriterVersion != 2 {
						t.Fatalf("protocol %+v, want 1/2", *e.Protocol)
					}
				}
			}
			if md == nil || protocols != 1 {
				t.Fatalf("version 0 lacks metaData or protocol: %+v", log[0])
			}
			var schema struct {
				Type   string `json:"type"`
				Fields []struct {
					Name     string         `json:"name"`
					Type     any            `json:"type"`
					Nullable bool           `json:"nullable"`
					Metadata map[string]any `json:"metadata"`
				} `json:"fields"`
			}
			if err := jsonUnmarshal(md.SchemaString, &schema); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range schema.Fields {
				ty := fmt.Sprint(f.Type)
				if _, ok := f.Type.(string); !ok {
					ty = jsonString(f.Type)
				}
				got = append(got, fmt.Sprintf("%s:%s:%v", f.Name, ty, f.Nullable))
			}
			if schema.Type != "struct" || strings.Join(got, " ") != c.want {
				t.Fatalf("schema %s\n got %s\nwant %s", md.SchemaString, strings.Join(got, " "), c.want)
			}
			if !slices.Equal(md.PartitionColumns, c.parts) {
				t.Fatalf("partitionColumns %v, want %v", md.PartitionColumns, c.parts)
			}
		})
	}
}

// flagSets are the eight combinations of three flags, as the decoder names them.
var flagSets = [8][]string{{}, {"unknown_sensor"}, {"out_of_range"}, {"unknown_sensor", "out_of_range"}, {"unit_mismatch"},
	{"unknown_sensor", "unit_mismatch"}, {"out_of_range", "unit_mismatch"}, {"unknown_sensor", "out_of_range", "unit_mismatch"}}
