// The ceiling of any Node UDP tracker: one dgram socket, a `message` handler, and a fixed
// reply per request type (action and transaction id copied, no parsing, no state).
// Usage: node udp-ceiling.js PORT
import dgram from 'node:dgram'

const port = Number(process.argv[2])
const socket = dgram.createSocket({type: 'udp4', lookup: (address, _family, cb) => cb(null, address, 4)})
const replies = (): Buffer[] => {
  const connect = Buffer.alloc(16)
  const announce = Buffer.alloc(20)
  const scrape = Buffer.alloc(20)
  announce.writeInt32BE(1, 0)
  announce.writeInt32BE(900, 8)
  scrape.writeInt32BE(2, 0)
  connect.writeBigInt64BE(0x1234567890abcdefn, 8)
  return [connect, announce, scrape]
}
let fixed = replies()

socket.on('message', (msg, rinfo) => {
  if (msg.length < 16) return
  const action = msg.readInt32BE(8)
  const reply = fixed[action === 0 ? 0 : action === 1 ? 1 : 2]
  msg.copy(reply, 4, 12, 16)
  socket.send(reply, 0, reply.length, rinfo.port, rinfo.address)
  // send() reads the buffer later when it queues: take fresh ones rather than overwrite it.
  if (socket.getSendQueueCount() > 0) fixed = replies()
})
socket.bind(port, '127.0.0.1', () => process.stdout.write(`listening ${port}\n`))
process.on('SIGTERM', () => process.exit(0))
