/**
 * UDP announces for torrents another worker owns: handed to the owner over the mesh with the
 * client's address, answered there from the owner's own socket of the same family (a client
 * cannot tell which worker's socket answers). At a full link the announce is dropped, like a
 * lost datagram (the mesh counts it). Scrapes go through the scrape router.
 */
import {ParseStatus, parseRequest} from '../../protocol/udp/index.js'
import {FRAME, UDP_ANNOUNCE_BYTES, UdpAnnounceFrame, writeUdpAnnounce} from '../frames.js'
import type {FrameHandler, Mesh} from '../mesh.js'
import type {UdpHandler} from './handler.js'
import {PeerAddress, type UdpLink} from '../../io/udp.js'

export class UdpForwarding implements FrameHandler {
  /** This worker's link by socket family (0 IPv4, 1 IPv6), as bound. */
  readonly links: [UdpLink | undefined, UdpLink | undefined] = [undefined, undefined]
  /** The peer of a request forwarded by another worker. */
  private readonly peer = new PeerAddress()
  /** A forwarded announce is written here; the mesh copies it. */
  private readonly frame = Buffer.alloc(UDP_ANNOUNCE_BYTES)
  private readonly announceIn = new UdpAnnounceFrame()

  constructor(
    private readonly mesh: Mesh,
    private readonly handler: UdpHandler,
    private readonly maxScrapeTorrents: number,
  ) {}

  /** The largest frame forwarding sends. */
  static readonly maxFrame = UDP_ANNOUNCE_BYTES

  /** Hands the announce datagram `msg`, which came in on a link of `socketFamily`, to worker `owner`. */
  forward(owner: number, socketFamily: 0 | 1, msg: Buffer, peer: PeerAddress): void {
    const length = writeUdpAnnounce(this.frame, 0, socketFamily, peer.port, peer.family, peer.ip, msg, 0)
    this.mesh.send(owner, FRAME.udpAnnounce, this.frame, 0, length)
  }

  /** Handles announces from other workers; false for other frames. */
  onFrame(_from: number, type: number, buf: Buffer, offset: number, length: number): boolean {
    if (type !== FRAME.udpAnnounce) return false
    const f = this.announceIn
    if (!f.decode(buf, offset, length)) return true
    const link = this.links[f.socketFamily]
    if (!link) return true
    const peer = this.peer
    peer.setBytes(buf, f.ipOffset, f.ipFamily, f.port)
    const msg = buf.subarray(f.requestStart, f.requestEnd)
    if (parseRequest(msg, msg.length, this.maxScrapeTorrents, this.handler.req) !== ParseStatus.Ok) return true
    this.handler.announce(link, peer.family === 4 ? 0 : 1, msg, peer)
    return true
  }
}
