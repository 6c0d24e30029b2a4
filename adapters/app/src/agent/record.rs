//! A record job and its outcome: the agent side of [`crate::records`], shared by every
//! adapter's `send_record`.

use proto::{MAX_RECORD_BODY, RecordFormat};
use serde::Serialize;

use super::{Agent, Job, Report};
use crate::records::{SendRecordError, encode_serialize};

/// The agent job for a record, and how to read its outcome: shared by every adapter's
/// `send_record`.
pub fn record_job<T: Serialize + ?Sized>(
    value: &T,
    format: RecordFormat,
) -> Result<Job, SendRecordError> {
    let body = encode_serialize(value, format, MAX_RECORD_BODY).map_err(SendRecordError::Encode)?;
    Ok(Job::Record(format, body))
}

/// The outcome of a record job once its session ended.
pub fn record_outcome(
    agent: &Agent,
    run: Result<(), crate::error::RunError>,
) -> Result<(), SendRecordError> {
    run.map_err(SendRecordError::Run)?;
    for r in agent.reports() {
        match r {
            Report::RecordStored => return Ok(()),
            Report::Failed { problem, .. } => {
                return Err(SendRecordError::Refused(problem.clone()));
            }
            _ => {}
        }
    }
    Err(SendRecordError::Refused(proto::Problem::new(
        proto::Reason::Other,
        "no answer",
    )))
}
