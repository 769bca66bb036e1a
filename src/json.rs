//! JSON values named in error messages, for every reader of JSON files
//! (model configs, task files).

use serde_json::Value;

/// The JSON kind of `value` with its article (`a string`, `an array`,
/// `null`), for messages such as ``expected a string, found an array``.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
