/**
 * UDP steering: with several workers on batched I/O, a classic BPF program on the SO_REUSEPORT
 * group (native/udp_batch.c `steer`) sends each announce and scrape to the socket of the worker
 * that owns its torrent (first info-hash byte modulo the worker count), so it needs no hop over
 * the mesh. That holds when the sockets joined the group in worker order (the cluster starts
 * workers one after another) and no other socket is in it; so the last worker to start attaches
 * the program and then checks it: a probe per worker, answered by whichever worker receives it.
 * Any probe answered by the wrong worker, or not at all, takes the program off again (the kernel
 * then spreads datagrams by its hash and the workers forward, as without it) and says so.
 * Forwarding stays either way: steering only saves the hop.
 */
import dgram from 'node:dgram'
import {parseSocketAddress} from '../../config/address.js'
import {PeerAddress} from '../../io/udp.js'
import {parseIpInto} from '../../net/ip.js'

/** A probe: connection id, action 1, transaction id k, 20 bytes whose first is k and the rest MARK. */
const MARK = Buffer.from('tracker-steer-probe')
export const PROBE_LENGTH = 16 + 1 + MARK.length
/** The answer: action 1, the probe's transaction id, the index of the worker that received it, ANSWER. */
const ANSWER = Buffer.from('steered!')
const ANSWER_LENGTH = 12 + ANSWER.length
const PROBE_WAIT_MS = 1000

/** Whether `msg` has a steering probe's shape (its connection id is checked by the caller). */
export function isProbe(msg: Uint8Array, length: number): boolean {
  if (length !== PROBE_LENGTH || msg[8] !== 0 || msg[9] !== 0 || msg[10] !== 0 || msg[11] !== 1) return false
  for (let i = 0; i < MARK.length; i++) if (msg[17 + i] !== MARK[i]) return false
  return true
}

/**
 * Where probes may come from: loopback, or an address the tracker binds. With a valid connection
 * id (bound to the sender's address) no other host can send one: a client's own connection id
 * does not make it a local address.
 */
export class ProbeSources {
  private readonly own: Uint8Array[] = []

  constructor(boundAddresses: string[]) {
    for (const address of boundAddresses) {
      const parsed = parseSocketAddress(address)
      const ip = new Uint8Array(16)
      const family = parsed ? parseIpInto(parsed.host, ip) : 0
      if (family !== 0) this.own.push(ip.subarray(0, family === 4 ? 4 : 16))
    }
  }

  allows(peer: PeerAddress): boolean {
    const b = peer.bytes
    if (b.length === 4 ? b[0] === 127 : b.every((x, i) => x === (i === 15 ? 1 : 0))) return true
    return this.own.some(ip => ip.length === b.length && ip.every((x, i) => x === b[i]))
  }
}

/** Writes the answer to a probe into `out`; returns its length. */
export function writeProbeAnswer(out: Buffer, probe: Uint8Array, workerIndex: number): number {
  out.writeUInt32BE(1, 0)
  out.set(probe.subarray(12, 16), 4)
  out.writeUInt32BE(workerIndex, 8)
  ANSWER.copy(out, 12)
  return ANSWER_LENGTH
}

export interface SteeredSocket {
  steer(workers: number): void
  unsteer(): void
}

/**
 * Attaches the program to the group of `link` (bound to host:port) and probes it from a socket on
 * `probeHost` (the bound address, or loopback for a wildcard). `connectionId` writes a valid
 * connection id for an address. Returns null when steering holds, else why it does not (the
 * program is then detached).
 */
export async function steerAndVerify(
  link: SteeredSocket,
  family: 4 | 6,
  host: string,
  port: number,
  workers: number,
  connectionId: (out: Buffer, offset: number, ip: Uint8Array) => void,
): Promise<string | null> {
  try {
    link.steer(workers)
  } catch (error) {
    return (error as Error).message
  }
  const wildcard = host === '0.0.0.0' || host === '::'
  const target = wildcard ? (family === 4 ? '127.0.0.1' : '::1') : host
  const socket = dgram.createSocket(family === 4 ? 'udp4' : 'udp6')
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(0, target, () => resolve())
    })
    const answeredBy = new Map<number, number>()
    socket.on('message', m => {
      if (m.length === ANSWER_LENGTH && m.subarray(12).equals(ANSWER)) answeredBy.set(m.readUInt32BE(4), m.readUInt32BE(8))
    })
    const me = new PeerAddress()
    me.setText(target, socket.address().port)
    for (let k = 0; k < workers; k++) {
      const probe = Buffer.alloc(PROBE_LENGTH)
      connectionId(probe, 0, me.bytes)
      probe.writeUInt32BE(1, 8)
      probe.writeUInt32BE(k, 12)
      probe[16] = k
      MARK.copy(probe, 17)
      socket.send(probe, port, target)
    }
    const deadline = Date.now() + PROBE_WAIT_MS
    while (answeredBy.size < workers && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
    const wrong: string[] = []
    for (let k = 0; k < workers; k++) {
      const w = answeredBy.get(k)
      if (w !== k) wrong.push(w === undefined ? `no answer for worker ${k}` : `worker ${k}'s probe reached worker ${w}`)
    }
    if (wrong.length === 0) return null
    link.unsteer()
    return wrong.join('; ')
  } catch (error) {
    link.unsteer()
    return (error as Error).message
  } finally {
    socket.close()
  }
}
