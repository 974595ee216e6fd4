//! The rooms of a cluster node ([`ClusterRooms`], the cluster's [`Rooms`]): a join finds (or
//! gives) the room's home; at home it enters the room's task here, elsewhere it is asked of
//! the home over NATS and linked there. A heartbeat says the node is alive and how loaded,
//! keeps the rooms it is home to, and lets go of participants whose other side is gone.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use signaling_protocol::{ErrorCode, ParticipantId};

use super::super::local_rooms::LocalRooms;
use super::super::media::MediaFactory;
use super::super::media_leg::MediaLegs;
use super::super::revocation::{Revocation, Revocations};
use super::super::rooms::{Joiner, RoomInfo, RoomLink, RoomStats, Rooms};
use super::admin::{AdminRequest, admin_subject};
use super::home::HomeSide;
use super::placement::Home;
use super::remote::RemoteSide;
use super::uplink::Uplink;
use super::wire::{self, JoinReply, JoinRequest};
use super::{Cluster, NodeInfo, NodeLoad};
use crate::config::SignalingConfig;

/// How long a home has to answer a join before it is taken for gone.
const JOIN_TIMEOUT: Duration = Duration::from_secs(3);

/// How many times a join looks for the room's home before it gives up (`unavailable`).
const JOIN_ATTEMPTS: usize = 6;

pub(in super::super) struct ClusterRooms {
    cluster: Cluster,
    revocations: Arc<Revocations>,
    /// Handing its rooms over: placement leaves it out, and it takes no room back.
    draining: Arc<std::sync::atomic::AtomicBool>,
    local: Arc<LocalRooms>,
    home: Arc<HomeSide>,
    remote: Arc<RemoteSide>,
}

impl ClusterRooms {
    /// This node's rooms in `cluster`, with `media`; `draining` says whether it is stopping.
    pub(in super::super) fn start(
        cluster: Cluster,
        config: &SignalingConfig,
        media: Option<Arc<dyn MediaFactory>>,
        stopping: tokio::sync::watch::Receiver<bool>,
        revocations: Arc<Revocations>,
    ) -> Arc<Self> {
        let placement_owner = cluster.clone();
        let on_end: super::super::local_rooms::OnEnd = Arc::new(move |room: &str| {
            let (cluster, room) = (placement_owner.clone(), room.to_owned());
            tokio::spawn(async move { cluster.placement().release(&room).await });
        });
        // A participant can come back to a room rebuilt elsewhere if its node is alive and
        // not draining (the node's number is its id's high bits).
        let nodes_view = cluster.clone();
        let returning: super::super::local_rooms::Returning = Arc::new(move |pid| {
            nodes_view
                .nodes()
                .live()
                .iter()
                .any(|n| n.index == pid >> 32 && !n.draining)
        });
        let local = Arc::new(LocalRooms::starting_at(
            config,
            media.clone(),
            cluster.first_participant_id(),
            Some(on_end),
            Some(Arc::new(super::log::StreamLogs::new(
                cluster.client().clone(),
            ))),
            Some(returning),
        ));
        let uplink = Uplink::start(cluster.client().clone());
        let draining_flag: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let home = HomeSide::new(
            draining_flag.clone(),
            cluster.clone(),
            local.clone(),
            uplink.clone(),
            config.outbox_capacity,
            config.outbox_bytes,
        );
        let (moved_tx, mut moved) = tokio::sync::mpsc::unbounded_channel();
        let remote = RemoteSide::new(
            cluster.node_id().to_owned(),
            uplink,
            media.clone().map(MediaLegs::new),
            local.clone(),
            moved_tx,
        );
        tokio::spawn(home.clone().serve());
        tokio::spawn(remote.clone().serve(cluster.client().clone()));
        let rooms = Arc::new(ClusterRooms {
            revocations: revocations.clone(),
            cluster,
            draining: draining_flag,
            local,
            home,
            remote,
        });
        tokio::spawn(heartbeat(Arc::downgrade(&rooms), media, stopping));
        tokio::spawn(super::admin::serve(
            Arc::downgrade(&rooms),
            rooms.cluster.client().clone(),
            rooms.cluster.node_id().to_owned(),
        ));
        tokio::spawn(super::admin::follow_revocations(
            Arc::downgrade(&rooms),
            rooms.cluster.revoked().clone(),
            revocations,
        ));
        // Participants here whose room's home drains: to its new home, one by one.
        let weak = Arc::downgrade(&rooms);
        tokio::spawn(async move {
            while let Some(pid) = moved.recv().await {
                let Some(rooms) = weak.upgrade() else { return };
                if let Some((room, joiner)) = rooms.remote.moving(pid) {
                    rooms.take_back(&room, joiner).await;
                }
            }
        });
        rooms
    }

    /// The live nodes, this one always among them (it may not have said so yet).
    fn live(&self) -> Vec<NodeInfo> {
        let mut nodes = self.cluster.nodes().live();
        if !nodes.iter().any(|n| n.node_id == self.cluster.node_id()) {
            nodes.push(self.info(NodeLoad::default(), false));
        }
        nodes
    }

    fn info(&self, load: NodeLoad, draining: bool) -> NodeInfo {
        let config = self.cluster.config();
        NodeInfo {
            node_id: config.node_id.clone(),
            index: self.cluster.index(),
            public_url: config.public_url.clone(),
            media_address: config.media_address.clone(),
            load,
            draining,
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    /// Asks `home` to let `joiner` into `room`.
    async fn ask_home(&self, room: &str, home: &Home, joiner: &Joiner) -> Asked {
        self.remote.expect(room, &home.node, joiner);
        let request = JoinRequest {
            room: room.to_owned(),
            pid: joiner.pid,
            identity: joiner.identity.clone(),
            may_publish: joiner.may_publish,
            node: self.cluster.node_id().to_owned(),
            resume: joiner.resume,
        };
        let body = serde_json::to_vec(&request).unwrap_or_default();
        let asked = tokio::time::timeout(
            JOIN_TIMEOUT,
            self.cluster
                .client()
                .request(wire::join_subject(&home.node), body.into()),
        )
        .await;
        let asked = match asked {
            Ok(Ok(message)) => match serde_json::from_slice::<JoinReply>(&message.payload) {
                Ok(JoinReply::Joined) => return Asked::Joined(self.remote.link(room)),
                Ok(JoinReply::Refused { code }) => Asked::Refused(code),
                Ok(JoinReply::NotHome) | Err(_) => Asked::NotHome,
            },
            // Nobody listens on the home's subject (NATS says so at once), or no answer in
            // time.
            Ok(Err(_)) | Err(_) => Asked::Gone,
        };
        self.remote.forget(joiner.pid);
        asked
    }
}

impl ClusterRooms {
    /// The rooms this node is home to, so marked.
    pub(super) async fn local_rooms(&self) -> Vec<RoomInfo> {
        let me = self.cluster.node_id().to_owned();
        let mut rooms = self.local.rooms().await;
        for r in &mut rooms {
            r.home = Some(me.clone());
        }
        rooms
    }

    /// Removes `pid` (or everyone) from `room`, whose home this node is.
    pub(super) async fn remove_here(
        &self,
        room: &str,
        pid: Option<ParticipantId>,
        reason: &str,
        code: ErrorCode,
    ) -> usize {
        self.local.remove(room, pid, reason, code).await
    }

    pub(super) fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// Asks `node` to do `what`; its answer, or `None` if it gives none in time.
    async fn ask<T: serde::de::DeserializeOwned>(
        &self,
        node: &str,
        what: &AdminRequest,
    ) -> Option<T> {
        let body = serde_json::to_vec(what).ok()?;
        let asked = tokio::time::timeout(
            JOIN_TIMEOUT,
            self.cluster
                .client()
                .request(admin_subject(node), body.into()),
        )
        .await;
        match asked {
            Ok(Ok(message)) => serde_json::from_slice(&message.payload).ok(),
            _ => None,
        }
    }

    /// Lets go of every room this node is home to and of its participants whose rooms are
    /// elsewhere: each is told `goodbye` (`shutting_down`: it reconnects, to another node).
    async fn hand_over(&self, why: &str) {
        let owned = self.cluster.placement().owned_rooms();
        tracing::warn!(rooms = owned.len(), why, "handing this node's rooms over");
        for room in owned {
            self.cluster.placement().forget(&room);
            self.local
                .remove(&room, None, why, ErrorCode::ShuttingDown)
                .await;
        }
        self.remote.strand_all(why);
    }

    /// Takes a participant here back into `room` at its new home, as the member it was; one
    /// that cannot be is closed, and reconnects.
    async fn take_back(&self, room: &str, joiner: Joiner) {
        let (pid, outbox) = (joiner.pid, joiner.outbox.clone());
        match self.join(room, joiner).await {
            Ok(_) => tracing::info!(room, participant = pid, "back in its room at its new home"),
            Err(code) => {
                tracing::info!(
                    room,
                    participant = pid,
                    ?code,
                    "cannot go back into its room: closing"
                );
                // A failed ask already forgot it; a failed join here did not.
                self.remote.forget(pid);
                let _ = outbox.push(super::super::outbox::Outbound::Close);
            }
        }
    }

    /// Moves every room this node is home to to another node (it drains): the entry goes,
    /// the nodes of its remote participants take them to the new home (which rebuilds the room
    /// from its log), its participants here are told goodbye (`shutting_down`) and reconnect.
    async fn hand_over_all(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
        // Said at once: placement leaves this node out from now on.
        let info = self.info(NodeLoad::default(), true);
        let _ = tokio::time::timeout(
            self.cluster.config().heartbeat,
            self.cluster.nodes().publish(&info),
        )
        .await;
        for room in self.cluster.placement().owned_rooms() {
            self.cluster.placement().release(&room).await;
            self.home.moving(&room);
            if let Some(handle) = self.local.handle(&room) {
                let (reply, done) = tokio::sync::oneshot::channel();
                if handle.send(super::super::room_task::Command::HandOver { reply }) {
                    let _ = done.await;
                }
            }
            tracing::info!(room, "handed over");
        }
    }

    /// The homes of rooms of participants here that are gone: no longer listed, or not
    /// answering (NATS says at once that nobody listens on a dead node's subjects).
    async fn gone_homes(&self) -> Vec<String> {
        let mut gone = Vec::new();
        for home in self.remote.homes() {
            if self.cluster.is_gone(&home).await {
                gone.push(home);
            }
        }
        gone
    }

    /// The rooms of `gone` homes with participants here move to a new home (the first node to
    /// take a room over rebuilds it from its log), and these participants go back into them as
    /// the members they were, their connections open all along. One that cannot is closed,
    /// and reconnects.
    async fn reattach(&self, gone: &[String]) {
        for node in gone {
            tracing::warn!(
                node,
                "a home node is gone: taking its rooms' participants to new homes"
            );
            self.cluster.nodes().strike(node).await;
        }
        for (room, _, joiners) in self.remote.stranded(gone) {
            for joiner in joiners {
                self.take_back(&room, joiner).await;
            }
        }
    }
}

/// What a room's home answered a join.
enum Asked {
    Joined(Box<dyn RoomLink>),
    Refused(ErrorCode),
    /// Not (or no longer) the room's home.
    NotHome,
    /// It does not answer: gone.
    Gone,
}

impl Rooms for ClusterRooms {
    fn next_id(&self) -> ParticipantId {
        self.local.next_id()
    }

    fn join<'a>(
        &'a self,
        room: &'a str,
        joiner: Joiner,
    ) -> BoxFuture<'a, Result<Box<dyn RoomLink>, ErrorCode>> {
        async move {
            let placement = self.cluster.placement();
            let me = self.cluster.node_id();
            // Cut off from the cluster, a node knows no room's home: the client tries again
            // (through the load balancer, another node).
            if !self.cluster.connected() {
                return Err(ErrorCode::Unavailable);
            }
            for _ in 0..JOIN_ATTEMPTS {
                let live = self.live();
                let home = match placement.place(room, &live).await {
                    Ok(home) => home,
                    Err(e) => {
                        tracing::warn!(room, error = %e, "cannot place the room");
                        tokio::time::sleep(Duration::from_millis(250)).await;
                        continue;
                    }
                };
                if home.node == me {
                    // Placed here by another node, or by this one before a restart.
                    if matches!(placement.adopt(room).await, Ok(true)) {
                        if joiner.resume {
                            // Its connection's link now finds the room here.
                            self.remote.expect(room, me, &joiner);
                        }
                        return self.local.join(room, joiner).await;
                    }
                    continue;
                }
                match self.ask_home(room, &home, &joiner).await {
                    Asked::Joined(link) => return Ok(link),
                    Asked::Refused(code) => return Err(code),
                    Asked::NotHome => tokio::time::sleep(Duration::from_millis(50)).await,
                    // It did not answer: taken over only if it is gone (a home that has not
                    // subscribed again after a NATS restart is not), else asked again.
                    Asked::Gone if !self.cluster.is_gone(&home.node).await => {
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    Asked::Gone => {
                        tracing::info!(room, home = %home.node, "the room's home does not answer: taking the room over");
                        self.cluster.nodes().strike(&home.node).await;
                        let live: Vec<NodeInfo> =
                            live.into_iter().filter(|n| n.node_id != home.node).collect();
                        let _ = placement.take_over(room, &home, &live).await;
                    }
                }
            }
            Err(ErrorCode::Unavailable)
        }
        .boxed()
    }

    fn rooms(&self) -> BoxFuture<'_, Vec<RoomInfo>> {
        async move {
            let me = self.cluster.node_id();
            let mut all = self.local_rooms().await;
            for node in self.cluster.nodes().live() {
                if node.node_id == me {
                    continue;
                }
                if let Some(rooms) = self
                    .ask::<Vec<RoomInfo>>(&node.node_id, &AdminRequest::Rooms)
                    .await
                {
                    all.extend(rooms);
                }
            }
            all.sort_by(|a, b| a.name.cmp(&b.name));
            all
        }
        .boxed()
    }

    fn remove<'a>(
        &'a self,
        room: &'a str,
        pid: Option<ParticipantId>,
        reason: &'a str,
        code: ErrorCode,
    ) -> BoxFuture<'a, usize> {
        async move {
            let home = match self.cluster.placement().home(room).await {
                Ok(Some(home)) => home.node,
                _ => return 0,
            };
            if home == self.cluster.node_id() {
                return self.remove_here(room, pid, reason, code).await;
            }
            let ask = AdminRequest::Remove {
                room: room.to_owned(),
                pid,
                reason: reason.to_owned(),
                code,
            };
            self.ask::<usize>(&home, &ask).await.unwrap_or(0)
        }
        .boxed()
    }

    fn share<'a>(&'a self, revocation: &'a Revocation) -> BoxFuture<'a, ()> {
        async move {
            let Ok(value) = serde_json::to_vec(revocation) else {
                return;
            };
            if let Err(e) = self
                .cluster
                .revoked()
                .put(revocation.key(), value.into())
                .await
            {
                tracing::warn!(error = %e, "cannot share a revocation with the cluster");
            }
        }
        .boxed()
    }

    fn nodes(&self) -> Option<Vec<NodeInfo>> {
        Some(self.live())
    }

    fn learn_revocations<'a>(
        &'a self,
        claims: &'a signaling_token::Claims,
        revocations: &'a Revocations,
    ) -> BoxFuture<'a, ()> {
        async move {
            // Cut off, the join is refused anyway.
            if !self.cluster.connected() {
                return;
            }
            for key in Revocation::keys_for(claims) {
                let got =
                    tokio::time::timeout(super::PING_TIMEOUT, self.cluster.revoked().get(key))
                        .await;
                if let Ok(Ok(Some(value))) = got
                    && let Ok(revocation) = serde_json::from_slice::<Revocation>(&value)
                {
                    revocations.apply(&revocation, signaling_token::unix_now());
                }
            }
        }
        .boxed()
    }

    fn remove_at_its_node<'a>(
        &'a self,
        room: &'a str,
        pid: ParticipantId,
    ) -> BoxFuture<'a, Option<bool>> {
        async move {
            let index = pid >> 32;
            if index == self.cluster.index() {
                return None;
            }
            let node = self
                .cluster
                .nodes()
                .live()
                .into_iter()
                .find(|n| n.index == index)?;
            let ask = AdminRequest::RemoveForGood {
                room: room.to_owned(),
                pid,
            };
            Some(self.ask::<bool>(&node.node_id, &ask).await.unwrap_or(false))
        }
        .boxed()
    }

    fn drain(&self) -> BoxFuture<'_, ()> {
        self.hand_over_all().boxed()
    }

    fn stats(&self) -> RoomStats {
        // Participants connected here: those of the rooms here that are connected to other
        // nodes count there, those here whose rooms are elsewhere count here.
        let mut stats = self.local.stats();
        stats.participants =
            (stats.participants + self.remote.count()).saturating_sub(self.home.remote_count());
        stats
    }
}

/// Every heartbeat: the node's entry, its rooms' entries, and the participants whose other
/// side is gone. Ends with the rooms.
async fn heartbeat(
    rooms: std::sync::Weak<ClusterRooms>,
    media: Option<Arc<dyn MediaFactory>>,
    draining: tokio::sync::watch::Receiver<bool>,
) {
    let period = match rooms.upgrade() {
        Some(r) => r.cluster.config().heartbeat,
        None => return,
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Since when NATS has been out of reach.
    let mut cut_off: Option<tokio::time::Instant> = None;
    loop {
        tick.tick().await;
        let Some(rooms) = rooms.upgrade() else { return };
        if !rooms.cluster.connected() {
            let since = *cut_off.get_or_insert_with(tokio::time::Instant::now);
            // Out of reach for as long as its entries live: the others take its rooms over
            // now, so it hands them over (their participants reconnect, through the load
            // balancer, to a node that can reach the cluster).
            if since.elapsed() >= period * 3 && !rooms.cluster.placement().owned_rooms().is_empty()
            {
                rooms.hand_over("this server lost the cluster").await;
            }
            continue;
        }
        cut_off = None;
        let media_load = media.as_ref().map(|m| m.load()).unwrap_or_default();
        let node_load = NodeLoad {
            rooms: rooms.cluster.placement().owned_rooms().len(),
            participants: rooms.stats().participants,
            packets_per_second: media_load.packets_per_second,
            cpu: media_load.cpu,
        };
        let info = rooms.info(
            node_load,
            *draining.borrow() || rooms.draining.load(std::sync::atomic::Ordering::Relaxed),
        );
        match tokio::time::timeout(period, rooms.cluster.nodes().publish(&info)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot tell the cluster this node is alive"),
            Err(_) => tracing::warn!("telling the cluster this node is alive takes too long"),
        }
        let refreshed = tokio::time::timeout(period, rooms.cluster.placement().refresh()).await;
        for room in refreshed.unwrap_or_default() {
            // Its participants reconnect and find it at its new home.
            tracing::warn!(room, "another node took this room over: closing it here");
            rooms
                .local
                .remove(
                    &room,
                    None,
                    "the meeting moved to another server",
                    ErrorCode::ShuttingDown,
                )
                .await;
        }
        rooms.home.drop_gone_nodes().await;
        let gone = rooms.gone_homes().await;
        if !gone.is_empty() {
            rooms.reattach(&gone).await;
        }
    }
}
