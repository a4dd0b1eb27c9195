import dgram from 'node:dgram'
import {randomBytes} from 'node:crypto'
import * as udp from '../../src/protocol/udp/index.js'

/** What a client announcing back to back saw: the longest wait between two replies. */
export interface GapReport {
  replies: number
  /** Longest time between two replies (or from the start to the first one), in ms. */
  maxGapMs: number
  /** When the longest gap ended, in ms since the probe started. */
  maxGapAtMs: number
  /** Requests sent again after `resendMs` without a reply (UDP may lose a datagram). */
  resent: number
}

/**
 * A BEP 15 client that announces `infoHash` to 127.0.0.1:`port` in a loop, one request in flight,
 * and records the time between replies. Any reply counts (an error reply is a reply too).
 */
export async function startGapProbe(port: number, infoHash: Uint8Array, resendMs = 1000): Promise<{stop(): GapReport; reset(): void; lap(): GapReport}> {
  const socket = dgram.createSocket('udp4')
  await new Promise<void>(resolve => socket.bind(0, '127.0.0.1', () => resolve()))
  socket.unref()
  const request = Buffer.alloc(98)
  const peerId = randomBytes(20)
  let connectionId: Uint8Array | undefined
  let tid = 1
  let last = performance.now()
  let start = last
  const report: GapReport = {replies: 0, maxGapMs: 0, maxGapAtMs: 0, resent: 0}
  let timer: NodeJS.Timeout | undefined
  let stopped = false

  const send = (): void => {
    tid = (tid + 1) >>> 0
    if (connectionId === undefined) udp.writeConnectRequest(request, tid)
    else {
      udp.writeAnnounceRequest(request, {
        connectionId,
        transactionId: tid,
        infoHash,
        peerId,
        downloaded: 0,
        left: 100,
        uploaded: 0,
        event: udp.EVENT_NONE,
        numWant: 0,
        port: 6881,
      })
    }
    socket.send(request, 0, connectionId === undefined ? 16 : 98, port, '127.0.0.1')
    clearTimeout(timer)
    timer = setTimeout(() => {
      report.resent++
      send()
    }, resendMs)
  }
  socket.on('message', m => {
    if (stopped || m.length < 8 || m.readUInt32BE(4) !== tid) return
    const now = performance.now()
    if (now - last > report.maxGapMs) {
      report.maxGapMs = now - last
      report.maxGapAtMs = now - start
    }
    last = now
    report.replies++
    if (m.readUInt32BE(0) === udp.ACTION_CONNECT && m.length >= 16) connectionId = new Uint8Array(m.subarray(8, 16))
    send()
  })
  send()
  /** What was seen since the start (or the last lap); counting starts again. */
  const lap = (): GapReport => {
    const now = performance.now()
    if (now - last > report.maxGapMs) {
      report.maxGapMs = now - last
      report.maxGapAtMs = now - start
    }
    const seen = {...report}
    start = now
    report.replies = report.maxGapMs = report.maxGapAtMs = report.resent = 0
    return seen
  }
  return {
    /** Starts counting again (e.g. once the first reply came). */
    reset() {
      start = last = performance.now()
      report.replies = report.maxGapMs = report.maxGapAtMs = report.resent = 0
    },
    lap,
    stop() {
      stopped = true
      clearTimeout(timer)
      socket.close()
      return lap()
    },
  }
}
