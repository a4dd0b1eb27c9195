/** What `tracker top` does, apart from drawing: where to read, how to read, the one-shot report. */
import {setTimeout as sleep} from 'node:timers/promises'
import {computeView, notTrackerMetrics, snapshot, viewText, type View} from './view.js'

export type {View} from './view.js'

/** GET the metrics text; a slow or failing endpoint is an error naming the URL. */
export async function fetchMetricsText(url: string, timeoutMs = 2000): Promise<string> {
  let res: Response
  try {
    res = await fetch(url, {signal: AbortSignal.timeout(timeoutMs)})
  } catch (error) {
    const {cause: reason} = error as {cause?: {code?: string; message?: string}}
    const cause = reason?.code ?? reason?.message ?? (error as Error).name
    throw new Error(
      `could not read ${url} (${cause === 'ECONNREFUSED' ? 'connection refused: is the tracker running, with [metrics] run_prometheus_endpoint on?' : cause})`,
    )
  }
  if (res.status === 404) throw new Error(`${url} answered HTTP 404 (a tracker serves its Prometheus metrics on /metrics)`)
  if (!res.ok) throw new Error(`${url} answered HTTP ${res.status}`)
  return res.text()
}

/** The metrics URL of a `[metrics] prometheus_endpoint_address` ("127.0.0.1:9000" or "[::1]:9000"). */
export function metricsUrl(address: string): string {
  return `http://${address}/metrics`
}

/**
 * Two reads `gapMs` apart, so that rates mean something; for `--once` and `--json`. An endpoint
 * that is not a tracker's is an error after the first read.
 */
export async function readOnce(url: string, fetchText = fetchMetricsText, gapMs = 1000): Promise<View> {
  const first = snapshot(await fetchText(url), Date.now())
  const problem = notTrackerMetrics(first, url)
  if (problem) throw new Error(problem)
  await sleep(gapMs)
  const second = snapshot(await fetchText(url), Date.now())
  return computeView(first, second)
}

export {viewText}
