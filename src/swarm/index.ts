export {
  AnnounceRequest,
  AnnounceResult,
  AnnounceStatus,
  ScrapeCounts,
  Swarm,
  type SwarmLimits,
  EVENT_COMPLETED,
  EVENT_NONE,
  EVENT_STARTED,
  EVENT_STOPPED,
} from './swarm.js'
export {SIZE_CLASSES, SegmentPool, classFor} from './pool.js'
export {AnswerStatus, WebTorrentPeer, WebTorrentSwarm, WsAnnounceStatus, type ConnectionRef, type WebTorrentLimits, type WsCounts} from './webtorrent.js'
