package lake

import (
	"encoding/binary"
	"slices"
	"strings"
)

// The order rows are written in: by partition, then (when the spec has a Cluster function) by
// cluster key, then by Compare. Sorting a million rows with a comparison sort took half of a commit's
// time; rows arrive in time order, so after a linear counting sort on (partition, cluster) each
// cluster is already, or nearly, in Compare order, and is checked and fixed in linear time.
// Rows are not moved: the result is a permutation, and files are written through it in chunks, so the
// buffer is never copied whole.

// partRange is one partition's rows: perm[lo:hi].
type partRange struct {
	key    int64
	lo, hi int
}

type clusterKey struct{ a, b string }

// order returns the partitions of rows and the permutation that puts rows in file order (nil when
// rows already are in file order and in one partition).
func order[T any](spec *Spec[T], rows []T) ([]partRange, []int32) {
	n := len(rows)
	if n == 0 {
		return nil, nil
	}
	// Partition of each row; few partitions, and runs of equal ones, so a linear search from the
	// last hit is cheap.
	var keys []int64
	pidx := make([]uint32, n)
	last := -1
	for i := range rows {
		k := int64(0)
		if spec.Partitioning != Unpartitioned {
			k = spec.Partitioning.key(spec.Time(&rows[i]))
		}
		if last < 0 || keys[last] != k {
			last = slices.Index(keys, k)
			if last < 0 {
				keys = append(keys, k)
				last = len(keys) - 1
			}
		}
		pidx[i] = uint32(last)
	}
	// Rank partitions by key.
	byKey := make([]int, len(keys))
	for i := range byKey {
		byKey[i] = i
	}
	slices.SortFunc(byKey, func(a, b int) int { return cmpInt64(keys[a], keys[b]) })
	prank := make([]uint32, len(keys))
	for r, i := range byKey {
		prank[i] = uint32(r)
	}

	// Cluster of each row, ranked by key.
	nclusters := 1
	var crank []uint32
	var cid []uint32
	if spec.Cluster != nil {
		ids := map[clusterKey]uint32{}
		var uniq []clusterKey
		cid = make([]uint32, n)
		var bySeries map[*Series]uint32 // with SeriesOf: a pointer's hash, not two strings'
		if spec.SeriesOf != nil {
			bySeries = map[*Series]uint32{}
		}
		var prev clusterKey
		prevID := uint32(0)
		for i := range rows {
			var s *Series
			if bySeries != nil {
				s = spec.SeriesOf(&rows[i])
				if id, ok := bySeries[s]; ok {
					cid[i] = id
					continue
				}
			}
			a, b := spec.Cluster(&rows[i])
			id := prevID
			if i == 0 || a != prev.a || b != prev.b {
				k := clusterKey{a, b}
				var ok bool
				if id, ok = ids[k]; !ok {
					id = uint32(len(uniq))
					ids[k] = id
					uniq = append(uniq, k)
				}
				prev, prevID = k, id
			}
			cid[i] = id
			if bySeries != nil {
				bySeries[s] = id
			}
		}
		nclusters = len(uniq)
		idx := make([]uint32, nclusters)
		for i := range idx {
			idx[i] = uint32(i)
		}
		slices.SortFunc(idx, func(x, y uint32) int {
			if c := strings.Compare(uniq[x].a, uniq[y].a); c != 0 {
				return c
			}
			return strings.Compare(uniq[x].b, uniq[y].b)
		})
		crank = make([]uint32, nclusters)
		for r, i := range idx {
			crank[i] = uint32(r)
		}
	}

	// Counting sort on bucket = partition rank × clusters + cluster rank (stable: keeps arrival
	// order inside a bucket).
	bucket := func(i int) int {
		b := int(prank[pidx[i]]) * nclusters
		if crank != nil {
			b += int(crank[cid[i]])
		}
		return b
	}
	starts := make([]int, len(keys)*nclusters+1)
	for i := range rows {
		starts[bucket(i)+1]++
	}
	for b := 1; b < len(starts); b++ {
		starts[b] += starts[b-1]
	}
	perm := make([]int32, n)
	next := slices.Clone(starts[:len(starts)-1])
	for i := range rows {
		b := bucket(i)
		perm[next[b]] = int32(i)
		next[b]++
	}

	// Refine or Compare order inside each bucket.
	for b := 0; b+1 < len(starts) && (spec.Refine != nil || spec.Compare != nil); b++ {
		idx := perm[starts[b]:starts[b+1]]
		if spec.Refine != nil {
			spec.Refine(rows, idx)
		} else {
			sortRange(rows, idx, spec.Compare)
		}
	}
	parts := make([]partRange, len(keys))
	for r, i := range byKey {
		parts[r] = partRange{key: keys[i], lo: starts[r*nclusters], hi: starts[(r+1)*nclusters]}
	}
	identity := true
	for i, p := range perm {
		if int(p) != i {
			identity = false
			break
		}
	}
	if identity {
		perm = nil
	}
	return parts, perm
}

// sortRange orders idx by cmp of the rows it points to. Runs that are already in order (the usual
// case) cost one comparison per row; a few rows out of place are moved by insertion, as long as they
// do not move far (a few sorted runs one after the other, such as minutes of every sensor, would
// make insertion quadratic); anything else is sorted.
func sortRange[T any](rows []T, idx []int32, cmp func(a, b *T) int) {
	inversions := 0
	for j := 1; j < len(idx); j++ {
		if cmp(&rows[idx[j-1]], &rows[idx[j]]) > 0 {
			inversions++
		}
	}
	if inversions == 0 {
		return
	}
	if inversions <= 8 && insertionSort(rows, idx, cmp, 8*len(idx)) {
		return
	}
	// Insertion only swaps rows that compare greater, so what it left is still a stable start.
	slices.SortStableFunc(idx, func(a, b int32) int { return cmp(&rows[a], &rows[b]) })
}

// insertionSort sorts idx by insertion unless that takes more than budget moves; it reports whether
// it finished.
func insertionSort[T any](rows []T, idx []int32, cmp func(a, b *T) int, budget int) bool {
	for j := 1; j < len(idx); j++ {
		for k := j; k > 0 && cmp(&rows[idx[k-1]], &rows[idx[k]]) > 0; k-- {
			idx[k-1], idx[k] = idx[k], idx[k-1]
			if budget--; budget < 0 {
				return false
			}
		}
	}
	return true
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Grouping by prefix (raw/). A full sort of a million payloads by their bytes costs a comparison sort's
// n log n cache misses; grouping only needs each payload's leading bytes, read in arrival order.
const (
	// prefixMinGroup: a group smaller than this keeps arrival order. The rows of one sensor in one
	// file are usually fewer (60 at 1 Hz and a minute per file), and arrive in time order already.
	prefixMinGroup = 1024
	// prefixMaxWords bounds how deep grouping looks: 16 words of 8 bytes.
	prefixMaxWords = 16
)

// wordKey is 16 bytes of a key, from an 8-byte boundary, as two big-endian numbers, and its row.
type wordKey struct {
	hi, lo uint64
	i      int32
}

// groupByPrefix reorders idx (indexes of rows, in arrival order) so that rows whose keys share
// leading bytes are adjacent. It skips the 8-byte words all rows share, then orders the rows by the
// next 16 bytes (in byte order: a stable radix sort over the bytes where they differ, keys read once,
// in arrival order), then each group of at least prefixMinGroup rows by the 16 bytes after, and so on
// up to prefixMaxWords words; smaller groups, and rows equal as far as it looks, keep arrival order.
// For JSON payloads of a sensor fleet on one topic this puts each sensor's messages together, in the
// order they arrived, after one or two reads of each payload's head.
func groupByPrefix[T any](rows []T, idx []int32, key func(*T) []byte) {
	if len(idx) < prefixMinGroup {
		return
	}
	buf := make([]wordKey, len(idx))
	tmp := make([]wordKey, len(idx))
	var rec func(idx []int32, buf, tmp []wordKey, depth int)
	rec = func(idx []int32, buf, tmp []wordKey, depth int) {
		for depth < prefixMaxWords {
			var dhi, dlo uint64
			longer := false // a key goes on past these words
			for n, i := range idx {
				k := key(&rows[i])
				hi, lo := prefixWord(k, depth), prefixWord(k, depth+1)
				longer = longer || len(k) > (depth+2)*8
				buf[n] = wordKey{hi, lo, i}
				dhi |= hi ^ buf[0].hi
				dlo |= lo ^ buf[0].lo
			}
			if dhi == 0 && dlo == 0 {
				if !longer {
					return
				}
				depth += 2 // a prefix every row shares: look further
				continue
			}
			if dhi == 0 {
				depth++ // start the 16 bytes at the first word where rows differ
				continue
			}
			buf = radixSortWords(buf, tmp, dhi, dlo)
			for n, s := range buf {
				idx[n] = s.i
			}
			for lo := 0; lo < len(buf); {
				hi := lo + 1
				for hi < len(buf) && buf[hi].hi == buf[lo].hi && buf[hi].lo == buf[lo].lo {
					hi++
				}
				if hi-lo >= prefixMinGroup {
					rec(idx[lo:hi], buf[lo:hi], tmp[lo:hi], depth+2)
				}
				lo = hi
			}
			return
		}
	}
	rec(idx, buf, tmp, 0)
}

// radixSortWords sorts buf by (hi, lo), stably, looking only at the bytes set in dhi and dlo (those
// where some keys differ), and returns the sorted slice (buf or tmp; the other is scratch).
func radixSortWords(buf, tmp []wordKey, dhi, dlo uint64) []wordKey {
	for _, word := range [2]int{1, 0} { // least significant first
		diff := dlo
		if word == 0 {
			diff = dhi
		}
		for shift := uint(0); shift < 64; shift += 8 {
			if (diff>>shift)&0xff == 0 {
				continue
			}
			var count [257]int
			for k := range buf {
				w := buf[k].lo
				if word == 0 {
					w = buf[k].hi
				}
				count[(w>>shift)&0xff+1]++
			}
			for b := 1; b < 257; b++ {
				count[b] += count[b-1]
			}
			for k := range buf {
				w := buf[k].lo
				if word == 0 {
					w = buf[k].hi
				}
				b := (w >> shift) & 0xff
				tmp[count[b]] = buf[k]
				count[b]++
			}
			buf, tmp = tmp, buf
		}
	}
	return buf
}

// prefixWord returns bytes [8d, 8d+8) of k as a big-endian number, zero-padded.
func prefixWord(k []byte, d int) uint64 {
	off := d * 8
	if off+8 <= len(k) {
		return binary.BigEndian.Uint64(k[off:])
	}
	var b [8]byte
	if off < len(k) {
		copy(b[:], k[off:])
	}
	return binary.BigEndian.Uint64(b[:])
}
