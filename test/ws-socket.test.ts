/** The WebSocket layer (RFC 6455) on its own: an echo server, raw frames and the `ws` client. */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import {randomBytes} from 'node:crypto'
import {once} from 'node:events'
import {setTimeout as sleep} from 'node:timers/promises'
import WebSocket from 'ws'
import {acceptHandshake, FlushQueue, WsSocket, type WsSocketHandler} from '../src/server/ws/socket.js'

interface Echo {
  port: number
  pongs: number
  closed: number
  stop(): Promise<void>
}

/** A server that answers each message with "echo:" + the message, in the same turn twice. */
async function startEcho(maxPayload = 1024): Promise<Echo> {
  const queue = new FlushQueue()
  const state = {pongs: 0, closed: 0}
  const handler: WsSocketHandler = {
    onMessage(socket, data) {
      if (data.toString() === 'ping me') socket.ping()
      else if (data.toString() === 'bye') socket.close(1000, 'bye')
      else {
        socket.sendText('echo:')
        socket.sendBytes(data, 0, data.length)
      }
    },
    onPong: () => state.pongs++,
    onClose: () => state.closed++,
  }
  const server = http.createServer((_req, res) => res.end())
  server.on('upgrade', (req, socket, head) => {
    if (acceptHandshake(req, socket)) new WsSocket(socket, handler, queue, maxPayload).start(head)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as net.AddressInfo).port,
    get pongs() { return state.pongs },
    get closed() { return state.closed },
    stop: () => new Promise(resolve => {
      server.closeAllConnections()
      server.close(() => resolve())
    }),
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
    socket.write(`GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n${headers}\r\n\r\n`)
    while (!client.buf.includes('\r\n\r\n') && !client.ended) await client.more()
    const end = client.buf.indexOf('\r\n\r\n') + 4
    const response = client.buf.toString('latin1', 0, end)
    client.buf = client.buf.subarray(end)
    return {client, response}
  }

  private more(): Promise<void> {
    return new Promise(resolve => this.waiters.push(resolve))
  }

  /** A masked frame. */
  static frame(opcode: number, payload: Buffer, fin = true, masked = true): Buffer {
    const mask = randomBytes(4)
    const len = payload.length
    const head = len < 126 ? Buffer.from([(fin ? 0x80 : 0) | opcode, (masked ? 0x80 : 0) | len])
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

test('the ws client: messages echo, in order, each send is a frame of its own', async () => {
  const echo = await startEcho()
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

test('raw frames: split into single bytes, pings answered, close echoed', async () => {
  const echo = await startEcho()
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
    assert.deepEqual(frames.map(f => [f.opcode, f.payload.toString()]), [[1, 'echo:'], [1, 'one'], [10, 'p!'], [1, 'echo:'], [1, 'two']])
    const code = Buffer.alloc(2)
    code.writeUInt16BE(4321)
    client.send(RawClient.frame(8, code))
    assert.equal(await client.closedBy(), 4321)
  } finally {
    await echo.stop()
  }
})

test('protocol errors close the connection with the RFC code', async () => {
  const echo = await startEcho(1024)
  try {
    const cases: [string, Buffer, number][] = [
      ['unmasked frame', RawClient.frame(1, Buffer.from('x'), true, false), 1002],
      ['RSV1 without an extension', (() => { const f = RawClient.frame(1, Buffer.from('x')); f[0] |= 0x40; return f })(), 1002],
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

test('bad handshakes get an HTTP error that says what is wrong', async () => {
  const echo = await startEcho()
  try {
    const old = await RawClient.open(echo.port, 'Sec-WebSocket-Version: 8')
    assert.match(old.response, /^HTTP\/1\.1 426 [^]*Sec-WebSocket-Version: 13/)
    const noKey = await RawClient.open(echo.port, 'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short')
    // The request now holds two keys; Node joins them, which is not a valid key.
    assert.match(noKey.response, /^HTTP\/1\.1 400 /)
  } finally {
    await echo.stop()
  }
})
