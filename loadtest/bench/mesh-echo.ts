/**
 * `npm run bench mesh-echo`: what a hop between workers costs apart from the tracker, by how many
 * frames are in flight, over the mesh's transport (a Unix socket between processes) and over
 * shared memory between threads (servers/mesh-echo.ts). A hop that finds the other side asleep
 * pays for the wake-up; this shows how much of a hop that is.
 */
import {spawn} from 'node:child_process'
import {distPath} from './proc.js'
import {markdownTable} from './udp.js'

const TRANSPORTS = ['unix', 'ring'] as const
const IN_FLIGHT = [1, 5, 64]

export interface EchoRow {
  transport: (typeof TRANSPORTS)[number]
  inFlight: number
  roundTripsPerSecond: number
  cpuUsPerRoundTrip: number
}

function runEcho(transport: string, inFlight: number, seconds: number): Promise<EchoRow> {
  const child = spawn(process.execPath, [distPath('loadtest/bench/servers/mesh-echo.js'), transport, String(inFlight), String(seconds)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout.on('data', d => (out += d))
  return new Promise((resolve, reject) => {
    child.on('exit', code => {
      if (code !== 0) return reject(new Error(`mesh-echo ${transport} ${inFlight} exited with ${code}: ${out}`))
      const r = JSON.parse(out) as {roundTrips: number; seconds: number; cpuUs: number}
      resolve({
        transport: transport as EchoRow['transport'],
        inFlight,
        roundTripsPerSecond: r.roundTrips / r.seconds,
        cpuUsPerRoundTrip: r.cpuUs / r.roundTrips,
      })
    })
  })
}

export async function benchMeshEcho(o: {duration: number; rounds: number}, log: (line: string) => void): Promise<EchoRow[]> {
  const runs = new Map<string, EchoRow[]>()
  for (let round = 0; round < o.rounds; round++)
    for (const transport of TRANSPORTS)
      for (const inFlight of IN_FLIGHT) {
        const row = await runEcho(transport, inFlight, o.duration)
        log(`${transport}, ${inFlight} in flight: ${row.cpuUsPerRoundTrip.toFixed(2)} us per round trip`)
        const key = `${transport}|${inFlight}`
        runs.set(key, [...(runs.get(key) ?? []), row])
      }
  // The run of median CPU per round trip stands for each configuration.
  return [...runs.values()].map(list => list.sort((a, b) => a.cpuUsPerRoundTrip - b.cpuUsPerRoundTrip)[Math.floor((list.length - 1) / 2)])
}

export function formatMeshEcho(rows: EchoRow[], o: {duration: number; rounds: number}): string {
  const body = rows.map(r => [
    r.transport === 'unix' ? 'Unix socket, 2 processes' : 'shared rings, 2 threads',
    String(r.inFlight),
    Math.round(r.roundTripsPerSecond).toLocaleString('en-US'),
    r.cpuUsPerRoundTrip.toFixed(2),
  ])
  return (
    [
      `# Mesh echo: 200-byte frames answered with 300 bytes, gathered per turn; ${o.duration} s per run, median of ${o.rounds} round(s); CPU of both sides`,
      ...markdownTable(['transport', 'in flight', 'round trips/s', 'CPU us per round trip'], body),
    ].join('\n') + '\n'
  )
}
