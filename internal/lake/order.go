package lake

import (
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
		var prev clusterKey
		prevID := uint32(0)
		for i := range rows {
			a, b := spec.Cluster(&rows[i])
			if i > 0 && a == prev.a && b == prev.b {
				cid[i] = prevID
				continue
			}
			k := clusterKey{a, b}
			id, ok := ids[k]
			if !ok {
				id = uint32(len(uniq))
				ids[k] = id
				uniq = append(uniq, k)
			}
			cid[i], prev, prevID = id, k, id
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

	// Compare order inside each bucket.
	if spec.Compare != nil {
		for b := 0; b+1 < len(starts); b++ {
			sortRange(rows, perm[starts[b]:starts[b+1]], spec.Compare)
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
// case) cost one comparison per row; a few rows out of place are moved by insertion; anything else
// is sorted.
func sortRange[T any](rows []T, idx []int32, cmp func(a, b *T) int) {
	inversions := 0
	for j := 1; j < len(idx); j++ {
		if cmp(&rows[idx[j-1]], &rows[idx[j]]) > 0 {
			inversions++
		}
	}
	switch {
	case inversions == 0:
	case inversions <= 8:
		for j := 1; j < len(idx); j++ {
			for k := j; k > 0 && cmp(&rows[idx[k-1]], &rows[idx[k]]) > 0; k-- {
				idx[k-1], idx[k] = idx[k], idx[k-1]
			}
		}
	default:
		slices.SortStableFunc(idx, func(a, b int32) int { return cmp(&rows[a], &rows[b]) })
	}
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
