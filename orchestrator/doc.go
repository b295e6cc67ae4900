// Package orchestrator decides and drives what each protected VM pair needs:
// it turns ECX observations into a desired topology, plans the steps from what
// the Hyper-V hosts report, and executes them through one serialized worker
// per pair, so two clusters failing over at once can never interleave steps.
package orchestrator
