// Opens WebSocket connections as fast as it can, C at a time, for S seconds: each connects, sends
// the upgrade request, reads the 101 and closes (browsers reconnect often). Prints one JSON line:
// {"handshakes": N, "refused": M, "seconds": S, "cpuMs": ...}.
// Usage: node ws-handshakes.js PORT CONCURRENCY SECONDS
import net from 'node:net'

const [port, concurrency, seconds] = process.argv.slice(2).map(Number)
const request =
  'GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'
let handshakes = 0
let refused = 0
let stop = false
const cpu0 = process.cpuUsage()

function loop(): void {
  if (stop) return
  const s = net.connect({port, host: '127.0.0.1'}, () => s.write(request))
  let got = ''
  s.on('data', d => {
    got += d.toString('latin1')
    if (!got.includes('\r\n\r\n')) return
    if (got.startsWith('HTTP/1.1 101 ')) handshakes++
    else refused++
    s.destroy()
  })
  s.on('error', () => {})
  s.on('close', loop)
}

for (let i = 0; i < concurrency; i++) loop()
setTimeout(() => {
  stop = true
  const cpu = process.cpuUsage(cpu0)
  process.stdout.write(`${JSON.stringify({handshakes, refused, seconds, cpuMs: (cpu.user + cpu.system) / 1000})}\n`)
  setTimeout(() => process.exit(0), 100)
}, seconds * 1000)
