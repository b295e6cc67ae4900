// Package ecx emulates EXPRESSCLUSTER X clusters: the RESTful API with its
// real JSON shapes and quirks, asynchronous group operations, and script
// resources run with CLP_* variables the way ECX runs start.bat and stop.bat.
// It imports nothing from hvro: it is an independent model of the world.
//
// A group's resources start disk → FIP → script and stop in reverse, so a
// stop script always runs while the group's disk is still online; a crashed
// server runs no stop script at all. The Observer hears every disk move and
// server crash synchronously, in that order, so the lab's Hyper-V hosts can
// follow. API.md describes what the emulator answers and which parts of it
// are synthetic (unknown on real clusters).
package ecx
