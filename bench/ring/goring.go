// SPDX-License-Identifier: GPL-2.0
//
// goring - the seed's ring design in Go, the baseline of bench/ring's
// "C vs Go" rounds: a byte ring under one sync.Mutex with two sync.Cond,
// Push copying a length-prefixed message in, Next copying the oldest one
// out without removing it, Shift removing it. One writer goroutine, one
// reader goroutine (the main one).
//
//	goring SIZE MSGS [RING_BYTES]
//
// prints "goring SIZE MSGS SECONDS" on success. Messages are stamped like
// ring_bench's (a sequence number in the first 8 bytes, a stamp in the
// last) and checked by the reader; a bad message exits with status 1.
package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

const frameHdr = 4 // uint32 length in front of each payload

type Ring struct {
	mu       sync.Mutex
	notEmpty *sync.Cond
	notFull  *sync.Cond
	buf      []byte
	mask     uint64
	head     uint64 // end of the last pushed frame
	tail     uint64 // start of the oldest frame
	pending  uint64 // footprint of the frame Next returned, for Shift
}

func NewRing(capacity uint64) *Ring {
	r := &Ring{buf: make([]byte, capacity), mask: capacity - 1}
	r.notEmpty = sync.NewCond(&r.mu)
	r.notFull = sync.NewCond(&r.mu)
	for i := range r.buf { // fault it in before the clock runs
		r.buf[i] = 0
	}
	return r
}

// put copies p in at stream position pos, wrapping.
func (r *Ring) put(pos uint64, p []byte) {
	off := pos & r.mask
	n := copy(r.buf[off:], p)
	copy(r.buf, p[n:])
}

// get copies len(p) bytes out from stream position pos, wrapping.
func (r *Ring) get(pos uint64, p []byte) {
	off := pos & r.mask
	n := copy(p, r.buf[off:])
	copy(p[n:], r.buf)
}

// Push copies msg in, waiting while it does not fit.
func (r *Ring) Push(msg []byte) {
	var hdr [frameHdr]byte
	need := uint64(frameHdr + len(msg))

	r.mu.Lock()
	for uint64(len(r.buf))-(r.head-r.tail) < need {
		r.notFull.Wait()
	}
	binary.LittleEndian.PutUint32(hdr[:], uint32(len(msg)))
	r.put(r.head, hdr[:])
	r.put(r.head+frameHdr, msg)
	r.head += need
	r.notEmpty.Signal()
	r.mu.Unlock()
}

// Next copies the oldest message into dst and returns its length; it
// stays in the ring until Shift.
func (r *Ring) Next(dst []byte) int {
	var hdr [frameHdr]byte

	r.mu.Lock()
	for r.head == r.tail {
		r.notEmpty.Wait()
	}
	r.get(r.tail, hdr[:])
	n := int(binary.LittleEndian.Uint32(hdr[:]))
	r.get(r.tail+frameHdr, dst[:n])
	r.pending = uint64(frameHdr + n)
	r.mu.Unlock()
	return n
}

// Shift removes the message Next returned.
func (r *Ring) Shift() {
	r.mu.Lock()
	r.tail += r.pending
	r.pending = 0
	r.notFull.Signal()
	r.mu.Unlock()
}

func stamp(seq uint64) byte {
	return byte((seq*0x9e3779b97f4a7c15)>>56) | 1
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: goring SIZE MSGS [RING_BYTES]")
		os.Exit(2)
	}
	size, err1 := strconv.Atoi(os.Args[1])
	msgs, err2 := strconv.ParseUint(os.Args[2], 10, 64)
	capacity := uint64(4 << 20)
	if len(os.Args) > 3 {
		c, err := strconv.ParseUint(os.Args[3], 10, 64)
		if err != nil || c == 0 || c&(c-1) != 0 {
			fmt.Fprintln(os.Stderr, "goring: RING_BYTES must be a power of two")
			os.Exit(2)
		}
		capacity = c
	}
	if err1 != nil || err2 != nil || size < 16 || uint64(size+frameHdr) > capacity {
		fmt.Fprintln(os.Stderr, "goring: bad SIZE or MSGS")
		os.Exit(2)
	}
	r := NewRing(capacity)
	src := make([]byte, size)
	dst := make([]byte, size)
	for i := range src {
		src[i] = byte(i * 7)
	}

	start := time.Now()
	go func() {
		for i := uint64(0); i < msgs; i++ {
			binary.LittleEndian.PutUint64(src, i)
			src[size-1] = stamp(i)
			r.Push(src)
		}
	}()
	for i := uint64(0); i < msgs; i++ {
		n := r.Next(dst)
		seq := binary.LittleEndian.Uint64(dst)
		if n != size || seq != i || dst[size-1] != stamp(i) {
			fmt.Fprintf(os.Stderr, "goring: CORRUPT: message %d: len %d seq %d\n", i, n, seq)
			os.Exit(1)
		}
		r.Shift()
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("goring %d %d %.6f\n", size, msgs, secs)
}
