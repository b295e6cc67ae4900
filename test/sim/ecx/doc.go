// Package ecx emulates EXPRESSCLUSTER X clusters: the RESTful API with its
// real JSON shapes and quirks, asynchronous group operations, and script
// resources run with CLP_* variables the way ECX runs start.bat and stop.bat.
// It imports nothing from hvro: it is an independent model of the world.
package ecx
