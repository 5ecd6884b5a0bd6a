package ledger

// DueSQLForTest exposes a due-work query to the EXPLAIN test.
func DueSQLForTest(k DueKind) string { return dueSQL[k] }

// CopyRowsMin is the entry (or usage row) count from which persist writes them with
// COPY, for the test that compares the two write paths.
const CopyRowsMin = copyRowsMin
