package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"unicode/utf8"
)

// bbolt's on-disk meta page (format version 2, unchanged since boltdb):
// a 16-byte page header, then magic, version, page size, flags, root
// bucket {root, sequence}, freelist, pgid, txid, checksum, all native
// endian. hvro reads it itself before bbolt maps the file, for two reasons:
// to tell a damaged store (magic present, checksums bad) from a foreign file
// (no magic), and to refuse a truncated file, whose missing pages would
// otherwise fault (SIGBUS) when bbolt touches them.
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	pageHeaderSize = 16
	metaSize       = 64 // up to and including the checksum
	metaSumSize    = 56 // bytes covered by the checksum
)

type boltMeta struct {
	magicOK  bool
	valid    bool
	version  uint32
	pageSize uint32
	root     uint64 // root page of the top-level bucket
	freelist uint64 // freelist page, or noFreelist
	pgid     uint64 // high water mark: pages [0, pgid) exist
	txid     uint64
}

func parseBoltMeta(page []byte) boltMeta {
	if len(page) < pageHeaderSize+metaSize {
		return boltMeta{}
	}
	m := page[pageHeaderSize : pageHeaderSize+metaSize]
	ne := binary.NativeEndian
	bm := boltMeta{
		magicOK:  ne.Uint32(m[0:]) == boltMagic,
		version:  ne.Uint32(m[4:]),
		pageSize: ne.Uint32(m[8:]),
		root:     ne.Uint64(m[16:]),
		freelist: ne.Uint64(m[32:]),
		pgid:     ne.Uint64(m[40:]),
		txid:     ne.Uint64(m[48:]),
	}
	h := fnv.New64a()
	h.Write(m[:metaSumSize])
	bm.valid = bm.magicOK && bm.version == boltVersion && h.Sum64() == ne.Uint64(m[56:])
	return bm
}

// inspectFile classifies a file by its bbolt meta pages and returns the
// meta page bbolt will use. It reads only the meta pages, which bbolt
// writes one at a time, so it is safe without the lock.
func (s *Store) inspectFile(f *os.File, size int64) (boltMeta, error) {
	if size == 0 {
		return boltMeta{}, &ForeignError{Path: s.path, Reason: "an empty file (hvro never leaves one: it creates stores atomically)"}
	}
	head := make([]byte, 4096)
	n, err := f.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return boltMeta{}, fmt.Errorf("read %s: %w", s.path, err)
	}
	head = head[:n]

	m0 := parseBoltMeta(head)
	var m1 boltMeta
	if m0.valid {
		m1 = readMetaAt(f, int64(m0.pageSize), size)
	} else {
		// Meta 0 is unreadable: look for meta 1 where bbolt would, at every
		// plausible page size.
		for ps := int64(1024); ps <= 16<<20 && ps < size; ps <<= 1 {
			if m1 = readMetaAt(f, ps, size); m1.magicOK {
				break
			}
		}
	}
	if !m0.magicOK && !m1.magicOK {
		return boltMeta{}, &ForeignError{Path: s.path, Reason: "not a bbolt database: " + sniff(head)}
	}
	var m boltMeta
	switch {
	case m0.valid && m1.valid:
		m = m0
		if m1.txid > m0.txid {
			m = m1
		}
	case m0.valid:
		m = m0
	case m1.valid:
		m = m1
	default:
		v := m0.version
		if !m0.magicOK {
			v = m1.version
		}
		if v != boltVersion {
			return boltMeta{}, &ForeignError{Path: s.path, Reason: fmt.Sprintf("a bbolt database of file format version %d (this hvro reads version %d)", v, boltVersion)}
		}
		return boltMeta{}, s.damaged(nil, "", errors.New("both bbolt meta pages fail their checksum"))
	}
	if m.pageSize < minPageSize || m.pageSize > maxPageSize || m.pageSize&(m.pageSize-1) != 0 {
		return boltMeta{}, s.damaged(nil, "", fmt.Errorf("meta page gives page size %d", m.pageSize))
	}
	if m.pgid > uint64(size)/uint64(m.pageSize) {
		return boltMeta{}, s.damaged(nil, "", fmt.Errorf("file is truncated: %d bytes, its meta page needs %d", size, m.pgid*uint64(m.pageSize)))
	}
	return m, nil
}

func readMetaAt(f *os.File, off, size int64) boltMeta {
	if off+pageHeaderSize+metaSize > size {
		return boltMeta{}
	}
	buf := make([]byte, pageHeaderSize+metaSize)
	if _, err := f.ReadAt(buf, off); err != nil {
		return boltMeta{}
	}
	return parseBoltMeta(buf)
}

// sniff describes the start of a non-bbolt file in a few words.
func sniff(head []byte) string {
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	switch {
	case bytes.HasPrefix(head, []byte("SQLite format 3\x00")):
		return "it is an SQLite database"
	case len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '['):
		return "it looks like JSON text"
	case bytes.HasPrefix(head, []byte("\x1f\x8b")):
		return "it is gzip data"
	case utf8.Valid(head) && !bytes.ContainsRune(head, 0):
		return fmt.Sprintf("it is a text file starting %.24q", head)
	}
	return fmt.Sprintf("%d bytes of unrecognised binary data starting %x", len(head), head[:min(len(head), 8)])
}

// quoteShort shows bytes read from a file in a message: at most 32 of
// them, Go-quoted (control characters, bidi overrides and invalid UTF-8
// escaped), and how many there were when that is more. A file's content
// is the attacker's choice; an error message goes to terminals and logs.
func quoteShort(b []byte) string {
	const max = 32
	if len(b) <= max {
		return strconv.Quote(string(b))
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(string(b[:max])), len(b))
}

// syncDir makes a directory entry change (create, link, rename) durable.
// Windows cannot open a directory for syncing, and NTFS journals the entry.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// publish makes tmp visible at path only if path does not exist yet: a
// hard link fails with EEXIST instead of replacing a store another process
// just created (rename would replace it).
func publish(tmp, path string) (created bool, err error) {
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("link %s into place: %w", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return true, fmt.Errorf("sync directory of %s: %w", path, err)
	}
	return true, nil
}
