//! The request id a client may put on any frame, echoed by the answer or error.

use serde::{Deserialize, Serialize};

/// A request identifier chosen by the client and echoed in the matching answer or error.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    /// A numeric id, e.g. `"id": 7`.
    Num(i64),
    /// A string id, e.g. `"id": "join-1"`.
    Text(String),
}
