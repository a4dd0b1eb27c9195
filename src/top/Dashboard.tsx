/** The live `tracker top` screen (Ink). Data comes from an injected fetcher, so tests need no network. */
import {useEffect, useRef, useState} from 'react'
import {Box, Text, useApp, useInput, useStdin, useStdout} from 'ink'
import {computeView, formatBytes, formatCount, formatDuration, notTrackerMetrics, protocolLines, snapshot, sparkline, type Snapshot, type View} from './view.js'

export type Fetcher = (url: string) => Promise<string>

/** `not a tracker`: the URL answers, but not with a tracker's metrics (no tracker_info). */
export type LinkState = 'connecting' | 'live' | 'reconnecting' | 'unreachable' | 'not a tracker'

/** Failed reads in a row before "reconnecting" turns into "unreachable". */
const UNREACHABLE_AFTER = 3
/** Points kept for the sparkline (one a second). */
const HISTORY = 300

export interface DashboardProps {
  url: string
  fetchText: Fetcher
  intervalMs?: number
  /** Milliseconds since the epoch; injectable for tests. */
  now?: () => number
}

export function Dashboard({url, fetchText, intervalMs = 1000, now = Date.now}: DashboardProps) {
  const [cur, setCur] = useState<Snapshot>()
  const [view, setView] = useState<View>()
  const [history, setHistory] = useState<number[]>([])
  const [state, setState] = useState<LinkState>('connecting')
  const [error, setError] = useState('')
  const [paused, setPaused] = useState(false)
  const [showWorkers, setShowWorkers] = useState(true)
  const [showHelp, setShowHelp] = useState(false)
  const failures = useRef(0)
  const last = useRef<Snapshot | undefined>(undefined)
  const pausedRef = useRef(false)
  pausedRef.current = paused

  useEffect(() => {
    let stopped = false
    let timer: NodeJS.Timeout | undefined
    const tick = async () => {
      try {
        const text = await fetchText(url)
        if (stopped) return
        const next = snapshot(text, now())
        failures.current = 0
        const problem = notTrackerMetrics(next, url)
        setState(problem ? 'not a tracker' : 'live')
        setError(problem ?? '')
        if (problem) {
          // Nothing of it is shown as a tracker's numbers: no view, no rates from it.
          last.current = undefined
          setCur(undefined)
          setView(undefined)
          setHistory([])
        } else if (!pausedRef.current) {
          const v = computeView(last.current, next)
          last.current = next
          setCur(next)
          setView(v)
          const requests = Object.values(v.requests).reduce((a, b) => a + b, 0)
          setHistory(h => [...h, requests].slice(-HISTORY))
        }
      } catch (e) {
        if (stopped) return
        failures.current++
        setError((e as Error).message)
        // A restarted tracker starts its counters from zero: rates restart from the next read.
        last.current = undefined
        setState(s => (failures.current >= UNREACHABLE_AFTER || s === 'connecting' || s === 'unreachable' ? 'unreachable' : 'reconnecting'))
      }
      if (!stopped) timer = setTimeout(() => void tick(), intervalMs)
    }
    void tick()
    return () => {
      stopped = true
      clearTimeout(timer)
    }
  }, [url, fetchText, intervalMs, now])

  const {isRawModeSupported} = useStdin()
  const {stdout} = useStdout()
  const width = Math.max(40, stdout?.columns ?? 80)
  const color = state === 'live' ? 'green' : state === 'reconnecting' ? 'yellow' : state === 'unreachable' || state === 'not a tracker' ? 'red' : 'gray'

  return (
    <Box flexDirection="column" width={width}>
      {isRawModeSupported ? <Keys onPause={() => setPaused(p => !p)} onWorkers={() => setShowWorkers(w => !w)} onHelp={() => setShowHelp(h => !h)} /> : null}
      <Box>
        <Text bold>
          tracker {view?.protocol ?? ''} {view?.version ?? ''}
        </Text>
        <Text>{`  up ${view ? formatDuration(view.uptimeSeconds) : '-'}  ${url}  `}</Text>
        <Text color={color}>
          {state}
          {paused ? ' (paused)' : ''}
        </Text>
        <Text dimColor>{`  ${cur ? new Date(cur.at).toISOString().slice(11, 19) : ''}`}</Text>
      </Box>
      {error && state !== 'live' ? <Text color={color}>{error}</Text> : null}
      {showHelp ? <Help /> : null}
      {view ? (
        <Body view={view} history={history} width={width} showWorkers={showWorkers} />
      ) : state === 'not a tracker' ? null : (
        <Text dimColor>waiting for the first read of {url}</Text>
      )}
      <Text dimColor>{'q quit  p pause  w workers  ? help'}</Text>
    </Box>
  )
}

function Keys({onPause, onWorkers, onHelp}: {onPause: () => void; onWorkers: () => void; onHelp: () => void}) {
  const {exit} = useApp()
  useInput(input => {
    if (input === 'q') exit()
    else if (input === 'p') onPause()
    else if (input === 'w') onWorkers()
    else if (input === '?') onHelp()
  })
  return null
}

function Help() {
  return (
    <Box flexDirection="column" borderStyle="round" paddingX={1}>
      <Text>{'q  quit'}</Text>
      <Text>{'p  pause or resume updates (the tracker is still read, to show its state)'}</Text>
      <Text>{'w  show or hide the worker table'}</Text>
      <Text>{'?  show or hide this help'}</Text>
      <Text dimColor>Rates are per second, from the last two reads of the metrics endpoint.</Text>
    </Box>
  )
}

const perSecond = (r: Record<string, number>) =>
  Object.entries(r)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${formatCount(v)}/s`)
    .join('  ') || '-'

function Body({view: v, history, width, showWorkers}: {view: View; history: number[]; width: number; showWorkers: boolean}) {
  const totalRequests = Object.values(v.requests).reduce((a, b) => a + b, 0)
  return (
    <Box flexDirection="column">
      <Box flexDirection="column" borderStyle="single" paddingX={1}>
        <Text bold>swarm</Text>
        <Text>{`torrents ${formatCount(v.swarm.torrents)}   peers ${formatCount(v.swarm.peersIpv4)} IPv4 / ${formatCount(v.swarm.peersIpv6)} IPv6   seeders ${formatCount(v.swarm.seeders)}   leechers ${formatCount(v.swarm.leechers)}`}</Text>
        <Text>{`completed ${formatCount(v.swarm.completed)}   access list ${formatCount(v.swarm.accessListEntries)}`}</Text>
      </Box>
      <Box flexDirection="column" borderStyle="single" paddingX={1}>
        <Text bold>
          {'traffic  '}
          <Text color="cyan">{formatCount(totalRequests)} requests/s</Text>
        </Text>
        <Text color="cyan">{sparkline(history, width - 6)}</Text>
        <Text>{`requests   ${perSecond(v.requests)}`}</Text>
        <Text>{`responses  ${perSecond(v.responses)}`}</Text>
        <Text>{`errors ${formatCount(v.errorsPerSecond)}/s   in ${formatBytes(v.bytesInPerSecond)}/s   out ${formatBytes(v.bytesOutPerSecond)}/s   connections ${formatCount(v.connections)}`}</Text>
        <Text>{`drops      ${perSecond(v.drops)}`}</Text>
        <Text>{`refusals   ${perSecond(v.refusals)}`}</Text>
      </Box>
      {v.protocols.length > 0 ? (
        <Box flexDirection="column" borderStyle="single" paddingX={1}>
          {protocolLines(v.protocols).map((line, i) => (
            <Text key={line} bold={i === 0}>
              {line}
            </Text>
          ))}
        </Box>
      ) : null}
      {showWorkers && v.workers.length > 0 ? (
        <Box flexDirection="column" borderStyle="single" paddingX={1}>
          <Text bold>{'worker  requests/s  responses/s  share  torrents'}</Text>
          {v.workers.map(w => (
            <Text
              key={w.index}
            >{`${w.index.padStart(6)}  ${formatCount(w.requestsPerSecond).padStart(10)}  ${formatCount(w.responsesPerSecond).padStart(11)}  ${(w.share * 100).toFixed(0).padStart(4)}%  ${formatCount(w.torrents).padStart(8)}`}</Text>
          ))}
        </Box>
      ) : null}
      <Box paddingX={1}>
        <Text>{`process  rss ${formatBytes(v.process.rssBytes)}   heap ${formatBytes(v.process.heapBytes)}   loop lag ${(v.process.eventLoopLagSeconds * 1000).toFixed(1)} ms   cpu ${v.process.cpuPercent.toFixed(0)}%`}</Text>
      </Box>
    </Box>
  )
}
