package ledger

// DueSQLForTest exposes a due-work query to the EXPLAIN test.
func DueSQLForTest(k DueKind) string { return dueSQL[k] }
