export {
  AnnounceRequest,
  AnnounceResult,
  AnnounceStatus,
  ScrapeCounts,
  type SwarmBackend,
  type SwarmGauges,
  type SwarmLimits,
  EVENT_COMPLETED,
  EVENT_NONE,
  EVENT_STARTED,
  EVENT_STOPPED,
} from './backend.js'
export {Swarm} from './swarm.js'
export {SIZE_CLASSES, SegmentPool, classFor} from './pool.js'
export {
  AnswerStatus,
  WsAnnounceStatus,
  type ConnectionRef,
  type WebTorrentBackend,
  type WebTorrentLimits,
  type WebTorrentPeerRef,
  type WsCounts,
} from './webtorrent-backend.js'
export {WebTorrentPeer, WebTorrentSwarm} from './webtorrent.js'
