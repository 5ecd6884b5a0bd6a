package ledger

// DueSQLForTest exposes a due-work query to the EXPLAIN test.
func DueSQLForTest(k DueKind) string { return dueSQL[k] }

// CopyEntriesMin is the entry count from which persist writes entries with
// COPY, for the test that compares the two write paths.
const CopyEntriesMin = copyEntriesMin
