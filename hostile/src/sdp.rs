//! Relabelling streams in SDP (RFC 8830 `a=msid:<stream id> <track id>`): the sfu names each
//! forwarded track's publisher by the stream id (`<publisher>` or `<publisher>.<source>`); a
//! lying server can name another.

/// `sdp` with every stream of publisher `from` named as `to`'s, in `a=msid:` and
/// `a=ssrc:... msid:` lines.
pub fn relabel(sdp: &str, from: &str, to: &str) -> String {
    let stream = |s: &str| match s.split_once('.') {
        Some((p, source)) if p == from => format!("{to}.{source}"),
        None if s == from => to.to_owned(),
        _ => s.to_owned(),
    };
    let swap = |rest: &str| match rest.split_once(' ') {
        Some((s, track)) => format!("{} {track}", stream(s)),
        None => stream(rest),
    };
    sdp.split_inclusive('\n')
        .map(|line| {
            let (body, end) = line
                .strip_suffix("\r\n")
                .map(|b| (b, "\r\n"))
                .or_else(|| line.strip_suffix('\n').map(|b| (b, "\n")))
                .unwrap_or((line, ""));
            if let Some(rest) = body.strip_prefix("a=msid:") {
                return format!("a=msid:{}{end}", swap(rest));
            }
            if let Some((head, rest)) = body.split_once(" msid:")
                && head.starts_with("a=ssrc:")
            {
                return format!("{head} msid:{}{end}", swap(rest));
            }
            line.to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_stream_is_relabelled() {
        let sdp = "v=0\r\na=msid:7 track-a\r\na=ssrc:1 msid:7.s track-a\r\na=msid:8 track-b\r\n";
        assert_eq!(
            relabel(sdp, "7", "3"),
            "v=0\r\na=msid:3 track-a\r\na=ssrc:1 msid:3.s track-a\r\na=msid:8 track-b\r\n"
        );
        assert_eq!(relabel(sdp, "70", "3"), sdp);
    }
}
