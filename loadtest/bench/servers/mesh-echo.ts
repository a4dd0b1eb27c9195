// What a hop between workers costs apart from the tracker: a closed loop of 200-byte frames from
// one side, each answered with 300 bytes by the other, N in flight, frames gathered per turn as
// the mesh does. "unix": two processes over a Unix socket (the mesh's transport); "ring": two
// worker threads over SharedArrayBuffer rings, a MessagePort message per batch as the doorbell.
// Usage: node mesh-echo.js unix|ring IN_FLIGHT SECONDS; prints {"roundTrips","seconds","cpuUs"}.
import {fork} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import net from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {isMainThread, MessageChannel, type MessagePort, Worker, workerData} from 'node:worker_threads'

const REQUEST = 200
const REPLY = 300
const me = fileURLToPath(import.meta.url)

/** Frames `[u32 length][payload]` out of a byte stream. */
function frames(onFrame: () => void): (chunk: Buffer) => void {
  let rest: Buffer = Buffer.alloc(0)
  return chunk => {
    const buf = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk
    let pos = 0
    while (buf.length - pos >= 4) {
      const length = buf.readUInt32LE(pos)
      if (buf.length - pos - 4 < length) break
      onFrame()
      pos += 4 + length
    }
    rest = buf.subarray(pos)
  }
}

/** Queues frames and writes them together at the end of the turn. */
function gatherer(socket: net.Socket): (size: number) => void {
  const out: Buffer[] = []
  let scheduled = false
  return size => {
    const frame = Buffer.alloc(4 + size)
    frame.writeUInt32LE(size, 0)
    out.push(frame)
    if (scheduled) return
    scheduled = true
    setImmediate(() => {
      scheduled = false
      socket.write(out.length === 1 ? out[0] : Buffer.concat(out))
      out.length = 0
    })
  }
}

const cpuUs = (): number => {
  const c = process.cpuUsage()
  return c.user + c.system
}

function unix(inFlight: number, seconds: number): void {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-echo-'))
  const path = join(dir, 'echo.sock')
  let roundTrips = 0
  const server = net.createServer(socket => {
    const send = gatherer(socket)
    socket.on(
      'data',
      frames(() => {
        roundTrips++
        send(REQUEST)
      }),
    )
    const cpu0 = cpuUs()
    const t0 = performance.now()
    for (let i = 0; i < inFlight; i++) send(REQUEST)
    setTimeout(() => {
      const ours = cpuUs() - cpu0
      const elapsed = (performance.now() - t0) / 1000
      peer.once('message', (theirs: number) => {
        process.stdout.write(JSON.stringify({roundTrips, seconds: elapsed, cpuUs: ours + theirs}) + '\n')
        rmSync(dir, {recursive: true, force: true})
        process.exit(0)
      })
      peer.send('stop')
    }, seconds * 1000)
  })
  server.listen(path)
  const peer = fork(me, ['unix-peer', path])
}

function unixPeer(path: string): void {
  const socket = net.connect(path)
  const send = gatherer(socket)
  socket.on(
    'data',
    frames(() => send(REPLY)),
  )
  const cpu0 = cpuUs()
  process.on('message', () => {
    process.send!(cpuUs() - cpu0)
    process.exit(0)
  })
}

/** One direction between two threads: `[head, tail]` then bytes; one writer, one reader. */
class Ring {
  static readonly SIZE = 1 << 20
  private readonly ctl: Int32Array
  private readonly view: DataView
  private readonly bytes: Uint8Array
  private static readonly payload = new Uint8Array(1024).fill(7)

  constructor(readonly sab: SharedArrayBuffer) {
    this.ctl = new Int32Array(sab, 0, 2)
    this.view = new DataView(sab, 8)
    this.bytes = new Uint8Array(sab, 8)
  }

  static create(): Ring {
    return new Ring(new SharedArrayBuffer(8 + Ring.SIZE))
  }

  /** Frames never wrap: one that would is written at the start (the end is marked skipped). */
  push(size: number): void {
    let tail = Atomics.load(this.ctl, 1)
    let at = tail % Ring.SIZE
    if (at + 4 + size > Ring.SIZE) {
      this.view.setUint32(at, 0xffffffff, true)
      tail += Ring.SIZE - at
      at = 0
    }
    if (Ring.SIZE - (tail - Atomics.load(this.ctl, 0)) < 4 + size) throw new Error('ring full')
    this.view.setUint32(at, size, true)
    this.bytes.set(Ring.payload.subarray(0, size), at + 4)
    Atomics.store(this.ctl, 1, tail + 4 + size)
  }

  drain(onFrame: () => void): void {
    let head = Atomics.load(this.ctl, 0)
    const tail = Atomics.load(this.ctl, 1)
    while (head < tail) {
      const at = head % Ring.SIZE
      const size = this.view.getUint32(at, true)
      if (size === 0xffffffff) {
        head += Ring.SIZE - at
        continue
      }
      onFrame()
      head += 4 + size
    }
    Atomics.store(this.ctl, 0, head)
  }
}

/** Drains `input` on each doorbell; `send` pushes to `output` and rings once at the end of the turn. */
function ringSide(input: Ring, output: Ring, port: MessagePort, onFrame: (send: (size: number) => void) => void): (size: number) => void {
  let scheduled = false
  const send = (size: number): void => {
    output.push(size)
    if (scheduled) return
    scheduled = true
    setImmediate(() => {
      scheduled = false
      port.postMessage(0)
    })
  }
  port.on('message', () => input.drain(() => onFrame(send)))
  return send
}

function ring(inFlight: number, seconds: number): void {
  const toPeer = Ring.create()
  const fromPeer = Ring.create()
  const {port1, port2} = new MessageChannel()
  const peer = new Worker(me, {workerData: {toPeer: toPeer.sab, fromPeer: fromPeer.sab, port: port2}, transferList: [port2]})
  peer.once('online', () => {
    let roundTrips = 0
    const send = ringSide(fromPeer, toPeer, port1, reply => {
      roundTrips++
      reply(REQUEST)
    })
    const cpu0 = cpuUs() // every thread of this process
    const t0 = performance.now()
    for (let i = 0; i < inFlight; i++) send(REQUEST)
    setTimeout(() => {
      const elapsed = (performance.now() - t0) / 1000
      process.stdout.write(JSON.stringify({roundTrips, seconds: elapsed, cpuUs: cpuUs() - cpu0}) + '\n')
      process.exit(0)
    }, seconds * 1000)
  })
}

if (!isMainThread) {
  const d = workerData as {toPeer: SharedArrayBuffer; fromPeer: SharedArrayBuffer; port: MessagePort}
  ringSide(new Ring(d.toPeer), new Ring(d.fromPeer), d.port, reply => reply(REPLY))
} else if (process.argv[2] === 'unix-peer') unixPeer(process.argv[3])
else if (process.argv[2] === 'unix') unix(Number(process.argv[3]), Number(process.argv[4]))
else if (process.argv[2] === 'ring') ring(Number(process.argv[3]), Number(process.argv[4]))
else {
  process.stderr.write('usage: node mesh-echo.js unix|ring IN_FLIGHT SECONDS\n')
  process.exit(2)
}
