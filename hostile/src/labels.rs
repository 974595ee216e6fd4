//! Relabelling streams: the sfu names the video each of a receiver's video sections carries by
//! its stream id (`<publisher>` or `<publisher>.<source>`, in `video_sections`) and lists the
//! videos published (`video_streams`); a lying server can name another participant instead,
//! and turn the receiver's `video_wants` back so that the video keeps coming.

/// `stream` named as `to`'s if it is `from`'s.
pub fn relabel(stream: &str, from: &str, to: &str) -> String {
    match stream.split_once('.') {
        Some((p, source)) if p == from => format!("{to}.{source}"),
        None if stream == from => to.to_owned(),
        _ => stream.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_publishers_streams_are_relabelled() {
        assert_eq!(relabel("7.s", "7", "3"), "3.s");
        assert_eq!(relabel("7", "7", "3"), "3");
        assert_eq!(relabel("70.s", "7", "3"), "70.s");
        assert_eq!(relabel("8.s", "7", "3"), "8.s");
    }
}
