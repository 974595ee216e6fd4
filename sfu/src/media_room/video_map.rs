//! What a receiver is told about videos (protocol 7): the videos published in the room
//! (`video_streams`), so that it can name the ones it shows in `video_wants`, and which video
//! each of its video sections carries (`video_sections`), so that it can put a section's
//! picture in the right tile. Each is said when it changes. Both are hints: every frame's
//! key names its sender.

use signaling_protocol::{MediaSignal, ParticipantId, VideoSection};

use super::participant::Link;
use super::{MediaKind, MediaRoom, Output};

impl MediaRoom {
    /// The stream ids of the videos published now, sorted.
    fn video_streams(&self) -> Vec<String> {
        let mut streams: Vec<String> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.kind == MediaKind::Video)
            .map(|(_, t)| t.stream_id())
            .collect();
        streams.sort();
        streams.dedup();
        streams
    }

    /// Tells every routed participant the videos published now, if they changed.
    pub(super) fn tell_streams(&mut self) {
        let streams = self.video_streams();
        if streams == self.streams_said {
            return;
        }
        self.streams_said = streams.clone();
        let routed: Vec<ParticipantId> = self
            .participants
            .iter()
            .filter(|(_, p)| p.negotiation.routed)
            .map(|(&q, _)| q)
            .collect();
        for q in routed {
            self.outputs.push_back(Output::Signal {
                participant: q,
                signal: MediaSignal::VideoStreams(streams.clone()),
            });
        }
    }

    /// Tells `pid` (just routed) the videos published now.
    pub(super) fn tell_streams_to(&mut self, pid: ParticipantId) {
        self.streams_said = self.video_streams();
        self.outputs.push_back(Output::Signal {
            participant: pid,
            signal: MediaSignal::VideoStreams(self.streams_said.clone()),
        });
    }

    /// Tells `sub` what each of its negotiated video sections carries, if that changed.
    pub(super) fn tell_sections(&mut self, sub: ParticipantId) {
        let Some(p) = self.participants.get_mut(&sub) else {
            return;
        };
        let Link::Open(s) = &mut p.link else { return };
        let mut sections: Vec<VideoSection> = p
            .video
            .negotiated()
            .filter_map(|(sender, carries)| {
                let stream = carries
                    .and_then(|id| self.tracks.get(id))
                    .map(|t| t.stream_id());
                Some(VideoSection {
                    mid: s.mid(sender)?,
                    stream,
                })
            })
            .collect();
        sections.sort_by(|a, b| a.mid.cmp(&b.mid));
        if p.sections_said == sections {
            return;
        }
        p.sections_said = sections.clone();
        self.outputs.push_back(Output::Signal {
            participant: sub,
            signal: MediaSignal::VideoSections(sections),
        });
    }
}
