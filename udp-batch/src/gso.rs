//! Which datagrams go out together: a flush's datagrams grouped by destination (their order to
//! each destination kept), runs to one destination joined into one UDP GSO send (Linux
//! `UDP_SEGMENT`: one buffer of equal-sized segments, the last possibly shorter, which the
//! kernel cuts into datagrams after one pass through the stack), and those sends gathered into
//! `sendmmsg` calls whose messages share one segment size. Pure planning: no sockets here.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;

/// Most segments in one GSO send (the kernel's `UDP_MAX_SEGMENTS`).
pub const MAX_SEGMENTS: usize = 64;
/// Most bytes in one GSO send (one UDP datagram's payload limit, less IP and UDP headers).
pub const MAX_BYTES: usize = 65_000;

/// Datagrams to one destination sent as one message: `datagrams` indexes [`Plan::order`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub to: SocketAddr,
    pub datagrams: Range<usize>,
    /// The segment size when the message holds more than one datagram.
    pub segment: Option<u16>,
}

/// Messages for one system call (`messages` indexes [`Plan::messages`]); all of them go with
/// the same `UDP_SEGMENT` size (`None`: none). A message of one datagram may share a call with
/// a segment size at least its length: the kernel sends it whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub messages: Range<usize>,
    pub segment: Option<u16>,
}

/// How one flush's datagrams are sent.
#[derive(Debug, Default)]
pub struct Plan {
    /// Indices of the datagrams, grouped by destination in order of first appearance.
    pub order: Vec<usize>,
    pub messages: Vec<Message>,
    pub calls: Vec<Call>,
}

impl Plan {
    /// The plan for `datagrams` (destination, bytes), with GSO runs if `gso`, at most
    /// `per_call` messages per call.
    pub fn new(datagrams: &[(SocketAddr, &[u8])], gso: bool, per_call: usize) -> Plan {
        let len = |i: usize| datagrams[i].1.len();
        // Grouped by destination, each destination's datagrams in the order given (so each
        // stream's packets stay in order).
        let mut groups: Vec<(SocketAddr, Vec<usize>)> = Vec::new();
        match datagrams.first() {
            None => {}
            // One destination (a port per participant: always): nothing to group.
            Some((to, _)) if datagrams.iter().all(|(d, _)| d == to) => {
                groups.push((*to, (0..datagrams.len()).collect()));
            }
            Some(_) => {
                let mut group_of: HashMap<SocketAddr, usize> = HashMap::new();
                for (i, (to, _)) in datagrams.iter().enumerate() {
                    let g = *group_of.entry(*to).or_insert_with(|| {
                        groups.push((*to, Vec::new()));
                        groups.len() - 1
                    });
                    groups[g].1.push(i);
                }
            }
        }
        let mut plan = Plan::default();
        for (to, list) in groups {
            let base = plan.order.len();
            let mut k = 0;
            while k < list.len() {
                let size = len(list[k]);
                let mut end = k + 1;
                if gso && size <= usize::from(u16::MAX) {
                    let mut bytes = size;
                    while end < list.len() && end - k < MAX_SEGMENTS {
                        let next = len(list[end]);
                        if next > size || next == 0 || bytes + next > MAX_BYTES {
                            break;
                        }
                        bytes += next;
                        end += 1;
                        if next < size {
                            // Only the last segment may be shorter.
                            break;
                        }
                    }
                }
                plan.messages.push(Message {
                    to,
                    datagrams: base + k..base + end,
                    segment: (end - k > 1).then_some(size as u16),
                });
                k = end;
            }
            plan.order.extend(list);
        }
        plan.calls = calls(
            &plan.messages,
            |m| len(plan.order[m.datagrams.start]),
            per_call,
        );
        plan
    }

    /// How many datagrams `messages` (a range of [`Plan::messages`]) hold.
    pub fn datagrams_in(&self, messages: Range<usize>) -> usize {
        self.messages[messages]
            .iter()
            .map(|m| m.datagrams.len())
            .sum()
    }
}

/// Consecutive messages gathered into calls: a call's messages share one segment size, and
/// each single datagram in a call with a segment size is no longer than it.
fn calls(
    messages: &[Message],
    single_len: impl Fn(&Message) -> usize,
    per_call: usize,
) -> Vec<Call> {
    let mut calls = Vec::new();
    let mut start = 0;
    while start < messages.len() {
        let mut segment: Option<u16> = None;
        let mut longest_single = 0;
        let mut end = start;
        while end < messages.len() && end - start < per_call.max(1) {
            let m = &messages[end];
            match m.segment {
                Some(s) => {
                    if segment.is_some_and(|c| c != s) || longest_single > usize::from(s) {
                        break;
                    }
                    segment = Some(s);
                }
                None => {
                    let l = single_len(m);
                    if segment.is_some_and(|c| l > usize::from(c)) {
                        break;
                    }
                    longest_single = longest_single.max(l);
                }
            }
            end += 1;
        }
        calls.push(Call {
            messages: start..end,
            segment,
        });
        start = end;
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// The plan's messages as (destination port, datagram lengths in order, segment).
    fn shape(
        plan: &Plan,
        datagrams: &[(SocketAddr, &[u8])],
    ) -> Vec<(u16, Vec<usize>, Option<u16>)> {
        plan.messages
            .iter()
            .map(|m| {
                let lens = plan.order[m.datagrams.clone()]
                    .iter()
                    .map(|&i| datagrams[i].1.len())
                    .collect();
                (m.to.port(), lens, m.segment)
            })
            .collect()
    }

    #[test]
    fn runs_to_one_destination_join_and_only_the_last_segment_is_shorter() {
        let (full, short, audio) = (vec![1u8; 1200], vec![2u8; 700], vec![3u8; 100]);
        // Two video frames and an audio packet to port 1, interleaved with port 2's.
        let datagrams: Vec<(SocketAddr, &[u8])> = vec![
            (addr(1), &full),
            (addr(2), &audio),
            (addr(1), &full),
            (addr(1), &short),
            (addr(1), &full),
            (addr(2), &full),
            (addr(1), &audio),
            (addr(2), &full),
        ];
        let plan = Plan::new(&datagrams, true, 64);
        assert_eq!(
            shape(&plan, &datagrams),
            vec![
                (1, vec![1200, 1200, 700], Some(1200)),
                (1, vec![1200, 100], Some(1200)),
                (2, vec![100], None),
                (2, vec![1200, 1200], Some(1200)),
            ]
        );
        // Every datagram once, each destination's in the order given.
        assert_eq!(plan.order, vec![0, 2, 3, 4, 6, 1, 5, 7]);
        // One call: port 2's single audio datagram fits under the 1200-byte segment size.
        assert_eq!(
            plan.calls,
            vec![Call {
                messages: 0..4,
                segment: Some(1200)
            }]
        );
        assert_eq!(plan.datagrams_in(0..4), 8);
    }

    #[test]
    fn without_gso_every_datagram_is_its_own_message_in_order_per_destination() {
        let d = vec![0u8; 500];
        let datagrams: Vec<(SocketAddr, &[u8])> = (0..130)
            .map(|i| (addr(1 + (i % 3) as u16), &d[..]))
            .collect();
        let plan = Plan::new(&datagrams, false, 64);
        assert_eq!(plan.messages.len(), 130);
        assert!(
            plan.messages
                .iter()
                .all(|m| m.segment.is_none() && m.datagrams.len() == 1)
        );
        assert_eq!(
            plan.calls
                .iter()
                .map(|c| c.messages.len())
                .collect::<Vec<_>>(),
            vec![64, 64, 2]
        );
    }

    #[test]
    fn sizes_that_cannot_share_a_segment_size_go_in_separate_calls() {
        let (a, b, big) = (vec![0u8; 1000], vec![0u8; 800], vec![0u8; 1100]);
        let datagrams: Vec<(SocketAddr, &[u8])> = vec![
            (addr(1), &big), // a single longer than the next run's segments
            (addr(2), &a),
            (addr(2), &a),
            (addr(3), &b),
            (addr(3), &b),
        ];
        let plan = Plan::new(&datagrams, true, 64);
        let segments: Vec<_> = plan.calls.iter().map(|c| c.segment).collect();
        assert_eq!(segments, vec![None, Some(1000), Some(800)]);
    }

    #[test]
    fn a_run_stops_at_the_segment_and_byte_limits() {
        let d = vec![0u8; 1200];
        let datagrams: Vec<(SocketAddr, &[u8])> = (0..100).map(|_| (addr(1), &d[..])).collect();
        let plan = Plan::new(&datagrams, true, 64);
        let runs: Vec<usize> = plan.messages.iter().map(|m| m.datagrams.len()).collect();
        // 54 × 1200 bytes is the most under 65,000.
        assert_eq!(runs, vec![54, 46]);
        let small = [0u8; 100];
        let datagrams: Vec<(SocketAddr, &[u8])> = (0..100).map(|_| (addr(1), &small[..])).collect();
        let plan = Plan::new(&datagrams, true, 64);
        let runs: Vec<usize> = plan.messages.iter().map(|m| m.datagrams.len()).collect();
        assert_eq!(runs, vec![MAX_SEGMENTS, 100 - MAX_SEGMENTS]);
    }
}
