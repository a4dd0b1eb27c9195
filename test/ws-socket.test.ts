/** The WebSocket layer (RFC 6455) on its own: an echo server, raw frames and the `ws` client. */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import {randomBytes} from 'node:crypto'
import {once} from 'node:events'
import {setTimeout as sleep} from 'node:timers/promises'
import WebSocket from 'ws'
import {acceptHandshake, WsSocket, type WsSocketHandler} from '../src/server/ws/socket.js'
import {FlushQueue} from '../src/io/flush-queue.js'
import {NativeTcp} from '../src/io/native-tcp.js'
import {StreamLink} from '../src/io/tcp.js'

/** Both ways bytes travel: Node's socket stream, and the batched TCP addon (when built: Linux). */
const LINKS = ['stream', ...(process.platform === 'linux' ? ['batched'] : [])] as const

interface Echo {
  port: number
  pongs: number
  closed: number
  /** The most bytes a connection had waiting 50 ms after an echo. */
  maxBuffered: number
  /** Times a connection went over its bound (reading stopped) and came back under. */
  overs: number
  unders: number
  /** The most bytes a connection had waiting when it went over its bound. */
  maxBufferedOver: number
  stop(): Promise<void>
}

/** A server that answers each message with "echo:" + the message, in the same turn twice. */
async function startEcho(link: string, maxPayload = 1024, maxBuffered = 1 << 20): Promise<Echo> {
  const queue = new FlushQueue()
  const batched = link === 'batched' || link === 'refused' ? NativeTcp.open(queue) : null
  if (link !== 'stream') assert.ok(batched, 'the tcp_batch addon is built (npm ci builds it)')
  // The addon refusing a connection (as when out of file descriptors): it stays on Node's socket.
  if (link === 'refused')
    (batched as unknown as {io: object}).io = Object.create(batched!.io, {
      adopt: {
        value: () => {
          throw new Error('EMFILE')
        },
      },
    })
  const state = {pongs: 0, closed: 0, maxBuffered: 0, overs: 0, unders: 0, maxBufferedOver: 0}
  const handler: WsSocketHandler = {
    onMessage(socket, data) {
      if (data.toString() === 'ping me') socket.ping()
      else if (data.toString() === 'bye') socket.close(1000, 'bye')
      else {
        socket.sendText('echo:')
        socket.sendBytes(data, 0, data.length)
        setTimeout(() => (state.maxBuffered = Math.max(state.maxBuffered, socket.bufferedAmount)), 50)
      }
    },
    onPong: () => state.pongs++,
    onClose: () => state.closed++,
    onBackpressure(socket, over) {
      if (over) {
        state.overs++
        state.maxBufferedOver = Math.max(state.maxBufferedOver, socket.bufferedAmount)
      } else {
        state.unders++
      }
    },
  }
  const server = http.createServer((_req, res) => res.end())
  server.on('upgrade', (req, socket, head) => {
    if (!acceptHandshake(req, socket)) return
    const io = batched ? batched.adopt(socket as net.Socket, head) : {link: new StreamLink(socket), head}
    assert.equal(io.link instanceof StreamLink, link !== 'batched', 'a plain socket is handed over unless refused')
    new WsSocket(io.link, handler, queue, maxPayload, maxBuffered).start(io.head)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as net.AddressInfo).port,
    get pongs() {
      return state.pongs
    },
    get closed() {
      return state.closed
    },
    get maxBuffered() {
      return state.maxBuffered
    },
    get overs() {
      return state.overs
    },
    get unders() {
      return state.unders
    },
    get maxBufferedOver() {
      return state.maxBufferedOver
    },
    stop: async () => {
      await new Promise<void>(resolve => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
      batched?.close()
    },
  }
}

/** A client that speaks frames by hand and reads the server's frames back. */
class RawClient {
  private buf = Buffer.alloc(0)
  private waiters: (() => void)[] = []
  ended = false

  private constructor(readonly socket: net.Socket) {
    socket.on('data', d => {
      this.buf = Buffer.concat([this.buf, d])
      for (const w of this.waiters.splice(0)) w()
    })
    socket.on('close', () => {
      this.ended = true
      for (const w of this.waiters.splice(0)) w()
    })
  }

  static async open(port: number, headers = 'Sec-WebSocket-Version: 13'): Promise<{client: RawClient; response: string}> {
    const socket = net.connect({port, host: '127.0.0.1'})
    await once(socket, 'connect')
    const client = new RawClient(socket)
    socket.write(
      `GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n${headers}\r\n\r\n`,
    )
    while (!client.buf.includes('\r\n\r\n') && !client.ended) await client.more()
    const end = client.buf.indexOf('\r\n\r\n') + 4
    const response = client.buf.toString('latin1', 0, end)
    client.buf = client.buf.subarray(end)
    return {client, response}
  }

  get buffered(): number {
    return this.buf.length
  }

  peek(at: number): number {
    return this.buf[at]
  }

  slice(start: number, end: number): Buffer {
    return this.buf.subarray(start, end)
  }

  more(): Promise<void> {
    return new Promise(resolve => this.waiters.push(resolve))
  }

  /** A masked frame. */
  static frame(opcode: number, payload: Buffer, fin = true, masked = true): Buffer {
    const mask = randomBytes(4)
    const len = payload.length
    const head =
      len < 126
        ? Buffer.from([(fin ? 0x80 : 0) | opcode, (masked ? 0x80 : 0) | len])
        : Buffer.from([(fin ? 0x80 : 0) | opcode, (masked ? 0x80 : 0) | 126, len >> 8, len & 0xff])
    const body = masked ? Buffer.from(payload.map((b, i) => b ^ mask[i % 4])) : payload
    return Buffer.concat(masked ? [head, mask, body] : [head, body])
  }

  send(frame: Buffer): void {
    this.socket.write(frame)
  }

  /** The next server frame: opcode and payload. */
  async next(): Promise<{opcode: number; payload: Buffer}> {
    for (;;) {
      if (this.buf.length >= 2) {
        let len = this.buf[1] & 0x7f
        let at = 2
        if (len === 126) {
          len = this.buf.readUInt16BE(2)
          at = 4
        }
        if (this.buf.length >= at + len) {
          const frame = {opcode: this.buf[0] & 0x0f, payload: this.buf.subarray(at, at + len)}
          assert.equal(this.buf[0] & 0x80, 0x80, 'server frames are final')
          assert.equal(this.buf[1] & 0x80, 0, 'server frames are not masked')
          this.buf = this.buf.subarray(at + len)
          return frame
        }
      }
      if (this.ended) throw new Error('connection closed')
      await this.more()
    }
  }

  async closedBy(): Promise<number> {
    const f = await this.next()
    assert.equal(f.opcode, 8)
    while (!this.ended) await this.more()
    return f.payload.readUInt16BE(0)
  }
}

for (const link of LINKS)
  test(`the ws client: messages echo, in order, each send is a frame of its own (${link})`, async () => {
    const echo = await startEcho(link)
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${echo.port}`)
      await once(ws, 'open')
      const got: string[] = []
      ws.on('message', d => got.push(d.toString()))
      for (const m of ['a', 'é ü \u{1F600}', 'x'.repeat(200), 'y'.repeat(1000)]) ws.send(m)
      // A fragmented message, as a client may send one.
      ws.send('frag', {fin: false})
      ws.send('ment', {fin: true})
      while (got.length < 10) await sleep(10)
      assert.deepEqual(got, ['echo:', 'a', 'echo:', 'é ü \u{1F600}', 'echo:', 'x'.repeat(200), 'echo:', 'y'.repeat(1000), 'echo:', 'fragment'])
      ws.send('ping me')
      await sleep(100)
      assert.equal(echo.pongs, 1, 'the ws client answers our ping')
      ws.send('bye')
      const [code] = await once(ws, 'close')
      assert.equal(code, 1000)
      await sleep(50)
      assert.equal(echo.closed, 1)
    } finally {
      await echo.stop()
    }
  })

for (const link of LINKS)
  test(`raw frames: split into single bytes, pings answered, close echoed (${link})`, async () => {
    const echo = await startEcho(link)
    try {
      const {client, response} = await RawClient.open(echo.port)
      assert.match(response, /^HTTP\/1\.1 101 /)
      const frame = RawClient.frame(1, Buffer.from('hello'))
      for (const byte of frame) {
        client.send(Buffer.from([byte]))
        await sleep(1)
      }
      assert.equal((await client.next()).payload.toString(), 'echo:')
      assert.equal((await client.next()).payload.toString(), 'hello')
      // Two frames in one write, with a ping between them.
      client.send(Buffer.concat([RawClient.frame(1, Buffer.from('one')), RawClient.frame(9, Buffer.from('p!')), RawClient.frame(1, Buffer.from('two'))]))
      const frames = [await client.next(), await client.next(), await client.next(), await client.next(), await client.next()]
      assert.deepEqual(
        frames.map(f => [f.opcode, f.payload.toString()]),
        [
          [1, 'echo:'],
          [1, 'one'],
          [10, 'p!'],
          [1, 'echo:'],
          [1, 'two'],
        ],
      )
      const code = Buffer.alloc(2)
      code.writeUInt16BE(4321)
      client.send(RawClient.frame(8, code))
      assert.equal(await client.closedBy(), 4321)
    } finally {
      await echo.stop()
    }
  })

for (const link of LINKS)
  test(`protocol errors close the connection with the RFC code (${link})`, async () => {
    const echo = await startEcho(link, 1024)
    try {
      const cases: [string, Buffer, number][] = [
        ['unmasked frame', RawClient.frame(1, Buffer.from('x'), true, false), 1002],
        [
          'RSV1 without an extension',
          (() => {
            const f = RawClient.frame(1, Buffer.from('x'))
            f[0] |= 0x40
            return f
          })(),
          1002,
        ],
        ['continuation without a message', RawClient.frame(0, Buffer.from('x')), 1002],
        ['unknown opcode', RawClient.frame(3, Buffer.from('x')), 1002],
        ['fragmented ping', RawClient.frame(9, Buffer.from('x'), false), 1002],
        ['invalid UTF-8', RawClient.frame(1, Buffer.from([0x7b, 0xff, 0x7d])), 1007],
        ['message over the limit', RawClient.frame(1, Buffer.alloc(1025, 0x61)), 1009],
        ['fragments over the limit', Buffer.concat([RawClient.frame(1, Buffer.alloc(1000, 0x61), false), RawClient.frame(0, Buffer.alloc(100, 0x61))]), 1009],
        ['a new message inside a fragmented one', Buffer.concat([RawClient.frame(1, Buffer.from('a'), false), RawClient.frame(1, Buffer.from('b'))]), 1002],
      ]
      for (const [what, bytes, expected] of cases) {
        const {client} = await RawClient.open(echo.port)
        client.send(bytes)
        assert.equal(await client.closedBy(), expected, what)
      }
    } finally {
      await echo.stop()
    }
  })

for (const link of LINKS)
  test(`bad handshakes get an HTTP error that says what is wrong (${link})`, async () => {
    const echo = await startEcho(link)
    try {
      const old = await RawClient.open(echo.port, 'Sec-WebSocket-Version: 8')
      assert.match(old.response, /^HTTP\/1\.1 426 [\s\S]*Sec-WebSocket-Version: 13/)
      const noKey = await RawClient.open(echo.port, 'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short')
      // The request now holds two keys; Node joins them, which is not a valid key.
      assert.match(noKey.response, /^HTTP\/1\.1 400 /)
    } finally {
      await echo.stop()
    }
  })

for (const link of LINKS)
  test(`a message of megabytes arrives whole in both directions, to a client that reads slowly (${link})`, async () => {
    const echo = await startEcho(link, 32 << 20)
    try {
      const {client, response} = await RawClient.open(echo.port)
      assert.match(response, /^HTTP\/1\.1 101 /)
      client.socket.pause()
      // More than loopback's socket buffers hold: the server's write is taken in parts.
      const big = Buffer.alloc(12 << 20)
      for (let i = 0; i < big.length; i++) big[i] = 0x61 + (i % 26)
      // 64-bit length: RawClient.frame stops at 16-bit ones.
      const mask = randomBytes(4)
      const head = Buffer.alloc(14)
      head[0] = 0x81
      head[1] = 0x80 | 127
      head.writeUInt32BE(big.length, 6)
      mask.copy(head, 10)
      client.send(Buffer.concat([head, Buffer.from(big.map((b, i) => b ^ mask[i & 3]))]))
      for (let i = 0; i < 200 && echo.maxBuffered === 0; i++) await sleep(10)
      assert.ok(echo.maxBuffered > 0, 'some of the echo waits in the server for the client to read')
      client.socket.resume()
      assert.equal((await client.next()).payload.toString(), 'echo:')
      for (;;) {
        if (client.buffered >= 10 + big.length) break
        await client.more()
      }
      assert.equal(client.peek(0), 0x81)
      assert.equal(client.peek(1), 127)
      assert.ok(client.slice(10, 10 + big.length).equals(big), 'the echo is byte-identical')
      client.socket.destroy()
    } finally {
      await echo.stop()
    }
  })

for (const link of [...LINKS, ...(LINKS.length > 1 ? ['refused'] : [])])
  test(`bytes sent with the handshake are not lost (${link})`, async () => {
    const echo = await startEcho(link)
    try {
      const socket = net.connect({port: echo.port, host: '127.0.0.1'})
      await once(socket, 'connect')
      let got = Buffer.alloc(0)
      socket.on('data', d => (got = Buffer.concat([got, d])))
      const frames = [RawClient.frame(1, Buffer.from('first')), RawClient.frame(1, Buffer.from('second'))]
      socket.write(
        Buffer.concat([
          Buffer.from(
            `GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
          ),
          ...frames,
        ]),
      )
      for (let i = 0; i < 100 && !got.includes('second'); i++) await sleep(10)
      // biome-ignore lint/suspicious/noControlCharactersInRegex: frame headers are the bytes asserted
      assert.match(got.toString('latin1'), /^HTTP\/1\.1 101 [\s\S]*\r\n\r\n\x81\x05echo:\x81\x05first\x81\x05echo:\x81\x06second$/)
      socket.destroy()
    } finally {
      await echo.stop()
    }
  })

for (const link of LINKS)
  test(`every frame counts against the bound: a peer that sends pings and does not read is not read from; it is read again once it drains (${link})`, async () => {
    const maxBuffered = 16_384
    const echo = await startEcho(link, 1024, maxBuffered)
    const {client} = await RawClient.open(echo.port)
    const socket = client.socket
    try {
      socket.pause()
      socket.removeAllListeners('data')
      // Pings numbered in their payload, as fast as the kernel takes them, until it takes no more.
      const payload = Buffer.alloc(125, 0x70)
      const handshake = socket.bytesWritten
      let sent = 0
      let stalledSince = Date.now()
      const deadline = Date.now() + 5000
      while (Date.now() < deadline && Date.now() - stalledSince < 300) {
        const batch: Buffer[] = []
        for (let i = 0; i < 256; i++) {
          payload.writeUInt32BE(sent++)
          batch.push(RawClient.frame(9, payload))
        }
        if (socket.write(Buffer.concat(batch))) stalledSince = Date.now()
        else await Promise.race([once(socket, 'drain').then(() => (stalledSince = Date.now())), sleep(300)])
      }
      const taken = socket.bytesWritten - socket.writableLength - handshake
      // Without the bound, the server reads all it is sent and queues a pong for each (gigabytes
      // within seconds); with it, only what the kernel's buffers hold between the two is taken.
      assert.ok(taken < 48 << 20, `the server stopped reading: the kernel took ${taken} bytes of pings`)
      assert.ok(echo.overs >= 1, 'the connection went over its bound')
      assert.ok(echo.maxBufferedOver <= maxBuffered + 127, `at most one frame past the bound was queued (${echo.maxBufferedOver})`)
      // Reading now: every ping is answered, in order, with its payload; then messages are echoed again.
      let buf: Buffer = Buffer.alloc(0)
      let pongs = 0
      let next = 0
      let bad = ''
      const done = new Promise<void>(resolve => {
        socket.on('data', (d: Buffer) => {
          buf = buf.length === 0 ? d : Buffer.concat([buf, d])
          let at = 0
          while (buf.length - at >= 2 && buf.length - at >= 2 + (buf[at + 1] & 0x7f)) {
            const length = buf[at + 1] & 0x7f
            if ((buf[at] & 0x0f) === 10) {
              const n = buf.readUInt32BE(at + 2)
              if (length !== 125 || n !== next) bad ||= `pong ${pongs}: length ${length}, number ${n}, expected ${next}`
              next++
              pongs++
            } else if ((buf[at] & 0x0f) === 1 && buf.toString('latin1', at + 2, at + 2 + length) === 'after') resolve()
            at += 2 + length
          }
          buf = buf.subarray(at)
        })
      })
      socket.resume()
      await sleep(200)
      socket.write(RawClient.frame(1, Buffer.from('after')))
      await Promise.race([done, sleep(20_000).then(() => assert.fail(`no echo after the pongs (${pongs} pongs of ${sent} pings)`))])
      assert.equal(bad, '')
      assert.ok(echo.unders >= 1, 'reading started again')
      // The pings still in the client's queue went out once it read again: every one is answered.
      assert.equal(pongs, sent)
    } finally {
      socket.destroy()
      await echo.stop()
    }
  })
