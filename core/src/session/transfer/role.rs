//! What a client refuses, whatever its application does.
//!
//! A client connects to do one job (send, get, list, record); the server it reaches may be
//! hostile. So the transfer layer of a client session answers on its own, without an event:
//! - every request from the server (GET, LIST, RECORD) with `Done { Denied }`: a client never
//!   lists, serves or stores anything for the peer;
//! - every offer that does not answer one of its own open GETs, or whose path is not the
//!   requested name or below it, with `Reject { Denied }`: a server cannot push files the
//!   user did not ask for, nor place them beside the requested one.
//!
//! An offer that passes still carries `overwrite: false`: whether a local file may be replaced
//! is the local user's decision (`get --overwrite`), never the peer's.

use alloc::string::String;

use crate::wire::{Control, Offer, Problem, Reason};

use super::{Transfer, bounded};

impl Transfer {
    /// As a client, refuse the peer's request `req` on the spot. `false` as a server.
    pub(super) fn client_refuses_request(&mut self, req: u32) -> bool {
        if !self.limits.client {
            return false;
        }
        let problem = Problem::new(Reason::Denied, "a client serves no requests");
        self.refusals.push_back(Control::Done {
            req,
            error: Some(problem),
        });
        true
    }

    /// As a client, refuse an offer that answers none of our GETs or lies outside the name
    /// that GET asked for. `false` when the offer may go to the application (always as a
    /// server).
    pub(super) fn client_refuses_offer(&mut self, o: &Offer) -> bool {
        if !self.limits.client {
            return false;
        }
        let detail = match o.request.and_then(|r| self.get_scopes.get(&r)) {
            None => "not asked for: a client takes only the files it requested",
            Some(scope) if !within(scope, &o.path) => "outside the requested name",
            Some(_) => return false,
        };
        self.refusals.push_back(Control::Reject {
            id: o.id,
            problem: bounded(Problem::new(Reason::Denied, detail)),
        });
        true
    }

    /// Remember what our GET `req` asked for.
    pub(super) fn scope_get(&mut self, req: u32, path: &str) {
        self.get_scopes.insert(req, String::from(path));
    }
}

/// Whether `path` is `scope` or lies below it, comparing `/`-separated components (empty ones
/// and `.` ignored, as the receiving store does). A path with a `..` component never is. The
/// empty scope (the whole root was asked for) holds every such path.
pub(super) fn within(scope: &str, path: &str) -> bool {
    fn parts(p: &str) -> impl Iterator<Item = &str> {
        p.split('/').filter(|c| !c.is_empty() && *c != ".")
    }
    if path.split('/').any(|c| c == "..") {
        return false;
    }
    let mut offered = parts(path);
    parts(scope).all(|want| offered.next() == Some(want))
}

#[cfg(test)]
mod tests {
    use super::within;

    #[test]
    fn paths_within_a_scope() {
        assert!(within("report.txt", "report.txt"));
        assert!(within("reports", "reports/2026.csv"));
        assert!(within("reports/", "./reports//a/b"));
        assert!(within("", "anything/at/all"));
        assert!(within(".", "x"));
    }

    #[test]
    fn paths_outside_a_scope() {
        assert!(!within("report.txt", ".bashrc"));
        assert!(!within("report.txt", "report.txt.evil"));
        assert!(!within("reports", "reportsX/a"));
        assert!(!within("reports", "evil/planted.sh"));
        assert!(!within("reports", "reports/../.bashrc"));
        assert!(!within("", "../x"));
        assert!(!within("a/b", "a"));
    }
}
