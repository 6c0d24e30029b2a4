//! Process limits an adapter raises at start.

/// Raise this process's soft limit on open files to its hard limit (as Go programs do at
/// start): the soft limit is often 1024, about what one busy session may hold. Failures are
/// logged and ignored; the old limit then stays.
pub fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    // `None` is unlimited.
    let below = match (limit.current, limit.maximum) {
        (Some(current), Some(maximum)) => current < maximum,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if below {
        let from = limit.current;
        limit.current = limit.maximum;
        match setrlimit(Resource::Nofile, limit) {
            Ok(()) => tracing::debug!(?from, to = ?limit.current, "raised the open file limit"),
            Err(e) => tracing::debug!(%e, "cannot raise the open file limit"),
        }
    }
}

#[cfg(test)]
mod tests {
    use rustix::process::{Resource, getrlimit, setrlimit};

    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        let limit = getrlimit(Resource::Nofile);
        let Some(hard) = limit.maximum else {
            return; // unlimited hard limit: nothing to compare against
        };
        // One below the hard limit, so the rest of this process barely notices.
        let mut lower = limit;
        lower.current = Some(hard - 1);
        setrlimit(Resource::Nofile, lower).unwrap();
        super::raise_open_file_limit();
        assert_eq!(getrlimit(Resource::Nofile).current, Some(hard));
    }
}
