package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// bbolt trusts its file: a corrupt page can make it panic, fault on the
// mapping, or loop forever (a branch page that points at itself). hvro
// therefore validates the page graph itself, with plain reads and under the
// file lock, before bbolt walks any tree: every reachable page lies below
// the high water mark, carries its own id, has a valid type and elements
// inside its bounds, and is referenced once (so the graph is a tree and
// every walk ends); the freelist holds sorted, unique, in-range ids. After
// this, bbolt's own check (key order, reachability) runs safely. The cost
// is one read of every page in use.

const (
	minPageSize      = 1024
	maxPageSize      = 16 << 20
	noFreelist       = ^uint64(0)
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01
	elementSize      = 16 // branch and leaf elements are both 16 bytes
	bucketHeaderSize = 16 // root pgid, sequence
	maxTreeDepth     = 64 // far beyond any real bbolt tree
)

type pageChecker struct {
	f    *os.File
	ps   uint64
	hwm  uint64
	seen map[uint64]bool
}

// validatePages checks the page graph reachable from meta m.
func validatePages(f *os.File, m boltMeta) error {
	c := &pageChecker{f: f, ps: uint64(m.pageSize), hwm: m.pgid, seen: map[uint64]bool{}}
	if m.root == 0 {
		return errors.New("meta page: root bucket is inline (page 0)")
	}
	if err := c.node(m.root, 0, "root"); err != nil {
		return err
	}
	if m.freelist != noFreelist {
		if err := c.freelist(m.freelist); err != nil {
			return err
		}
	}
	return nil
}

// page reads page id with its overflow pages, after checking the id and
// marking every page of the span as referenced.
func (c *pageChecker) page(id uint64, from string) ([]byte, error) {
	if id < 2 || id >= c.hwm {
		return nil, fmt.Errorf("%s points at page %d, outside [2, %d)", from, id, c.hwm)
	}
	var hdr [pageHeaderSize]byte
	if _, err := c.f.ReadAt(hdr[:], int64(id*c.ps)); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	ne := binary.NativeEndian
	if got := ne.Uint64(hdr[0:]); got != id {
		return nil, fmt.Errorf("page %d (from %s) says it is page %d", id, from, got)
	}
	overflow := uint64(ne.Uint32(hdr[12:]))
	if overflow >= c.hwm-id {
		return nil, fmt.Errorf("page %d: %d overflow pages run past the high water mark %d", id, overflow, c.hwm)
	}
	for p := id; p <= id+overflow; p++ {
		if c.seen[p] {
			return nil, fmt.Errorf("page %d (from %s) is referenced twice", p, from)
		}
		c.seen[p] = true
	}
	buf := make([]byte, (overflow+1)*c.ps)
	if _, err := c.f.ReadAt(buf, int64(id*c.ps)); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	return buf, nil
}

func (c *pageChecker) node(id uint64, depth int, from string) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("page %d: tree deeper than %d", id, maxTreeDepth)
	}
	buf, err := c.page(id, from)
	if err != nil {
		return err
	}
	ne := binary.NativeEndian
	flags, count := ne.Uint16(buf[8:]), uint64(ne.Uint16(buf[10:]))
	switch flags {
	case branchPageFlag:
		if count == 0 {
			return fmt.Errorf("page %d: branch page without elements", id)
		}
		if pageHeaderSize+count*elementSize > uint64(len(buf)) {
			return fmt.Errorf("page %d: %d elements do not fit", id, count)
		}
		for i := range count {
			off := pageHeaderSize + i*elementSize
			e := buf[off : off+elementSize]
			pos, ksize, child := uint64(ne.Uint32(e[0:])), uint64(ne.Uint32(e[4:])), ne.Uint64(e[8:])
			if off+pos+ksize > uint64(len(buf)) {
				return fmt.Errorf("page %d: element %d's key lies outside the page", id, i)
			}
			if err := c.node(child, depth+1, fmt.Sprintf("page %d element %d", id, i)); err != nil {
				return err
			}
		}
		return nil
	case leafPageFlag:
		return c.leaf(buf, depth, fmt.Sprintf("page %d", id))
	}
	return fmt.Errorf("page %d (from %s): type %#x is neither branch nor leaf", id, from, flags)
}

// leaf checks a leaf page, or an inline bucket's page inside a value.
func (c *pageChecker) leaf(buf []byte, depth int, name string) error {
	if uint64(len(buf)) < pageHeaderSize {
		return fmt.Errorf("%s: shorter than a page header", name)
	}
	ne := binary.NativeEndian
	count := uint64(ne.Uint16(buf[10:]))
	if pageHeaderSize+count*elementSize > uint64(len(buf)) {
		return fmt.Errorf("%s: %d elements do not fit", name, count)
	}
	for i := range count {
		off := pageHeaderSize + i*elementSize
		e := buf[off : off+elementSize]
		flags := ne.Uint32(e[0:])
		pos, ksize, vsize := uint64(ne.Uint32(e[4:])), uint64(ne.Uint32(e[8:])), uint64(ne.Uint32(e[12:]))
		start := off + pos
		if start+ksize+vsize > uint64(len(buf)) {
			return fmt.Errorf("%s: element %d's key or value lies outside the page", name, i)
		}
		if flags&bucketLeafFlag == 0 {
			continue
		}
		v := buf[start+ksize : start+ksize+vsize]
		if len(v) < bucketHeaderSize {
			return fmt.Errorf("%s: element %d is a bucket with a %d-byte header", name, i, len(v))
		}
		from := fmt.Sprintf("bucket %q", buf[start:start+ksize])
		if root := ne.Uint64(v[0:]); root != 0 {
			if err := c.node(root, depth+1, from); err != nil {
				return err
			}
			continue
		}
		inline := v[bucketHeaderSize:]
		if len(inline) < pageHeaderSize || ne.Uint16(inline[8:]) != leafPageFlag {
			return fmt.Errorf("%s: inline %s is not a leaf page", name, from)
		}
		if depth+1 > maxTreeDepth {
			return fmt.Errorf("%s: buckets nested deeper than %d", name, maxTreeDepth)
		}
		if err := c.leaf(inline, depth+1, "inline "+from); err != nil {
			return err
		}
	}
	return nil
}

func (c *pageChecker) freelist(id uint64) error {
	buf, err := c.page(id, "meta page freelist")
	if err != nil {
		return err
	}
	ne := binary.NativeEndian
	if flags := ne.Uint16(buf[8:]); flags != freelistPageFlag {
		return fmt.Errorf("freelist page %d: type %#x", id, flags)
	}
	first, count := uint64(0), uint64(ne.Uint16(buf[10:]))
	if count == 0xFFFF { // the real count is the first element
		first, count = 1, ne.Uint64(buf[pageHeaderSize:])
	}
	if count > (uint64(len(buf))-pageHeaderSize)/8-first {
		return fmt.Errorf("freelist page %d: %d ids do not fit", id, count)
	}
	ids := make([]uint64, count)
	for i := range count {
		ids[i] = ne.Uint64(buf[pageHeaderSize+(first+i)*8:])
	}
	// bbolt writes the ids sorted; a duplicate would be handed out twice.
	for i, p := range ids {
		if p < 2 || p >= c.hwm {
			return fmt.Errorf("freelist page %d: free page %d outside [2, %d)", id, p, c.hwm)
		}
		if i > 0 && p <= ids[i-1] {
			return fmt.Errorf("freelist page %d: ids not strictly increasing at %d", id, p)
		}
	}
	return nil
}
