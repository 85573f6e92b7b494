// Package scheduler decides where tasks run and which tasks stop. It is the
// Amazon ECS placement engine: a resource filter, the placement constraints
// (memberOf, distinctInstance) and a lexicographic chain of placement
// strategies (spread, binpack, random), applied to each task of a batch in
// turn. It works on plain snapshots of container instances and imports
// nothing stateful, so a test or a benchmark drives it alone; the caller
// converts its records at the edge and commits the result.
//
// Place chooses instances for a batch of tasks; ChooseStops chooses the
// tasks a service stops when it scales in. Fit and Reserve are the resource
// rules on their own, for StartTask. See README.md for the pipeline and the
// decisions taken where the ECS documentation is silent.
package scheduler
