package audit

// AppendJSONStrings exposes the hashed encoding to the tests.
var AppendJSONStrings = appendJSONStrings
