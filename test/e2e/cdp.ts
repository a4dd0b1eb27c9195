/**
 * A small Chrome DevTools Protocol client for the browser end-to-end test: starts headless
 * Chromium with its own profile, talks to it over the DevTools WebSocket (flat sessions: one
 * socket, a sessionId per page) and keeps the browser's stderr and each page's console.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import WebSocket from 'ws'

type Params = Record<string, unknown>
type Listener = (params: Params, sessionId: string | undefined) => void

/** How much of a browser's stderr and a page's console is kept for failure messages. */
const KEEP = 20_000
const keepTail = (s: string): string => (s.length > KEEP ? s.slice(-KEEP) : s)

/** One DevTools WebSocket: commands by id, events by method. */
export class CdpConnection {
  private nextId = 1
  private readonly pending = new Map<number, {method: string; resolve: (r: Params) => void; reject: (e: Error) => void}>()
  private readonly listeners = new Map<string, Listener[]>()

  private constructor(private readonly socket: WebSocket) {
    socket.on('message', data => this.dispatch(JSON.parse(String(data))))
    socket.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error(`DevTools socket closed during ${p.method}`))
      this.pending.clear()
    })
  }

  static connect(url: string): Promise<CdpConnection> {
    return new Promise((resolve, reject) => {
      // Browser pages can send large results (returnByValue); no compression on loopback.
      const socket = new WebSocket(url, {perMessageDeflate: false, maxPayload: 256 * 1024 * 1024})
      socket.once('open', () => resolve(new CdpConnection(socket)))
      socket.once('error', reject)
    })
  }

  send<T = Params>(method: string, params: Params = {}, sessionId?: string): Promise<T> {
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, {method, resolve: resolve as (r: Params) => void, reject})
      this.socket.send(JSON.stringify(sessionId ? {id, method, params, sessionId} : {id, method, params}))
    })
  }

  on(method: string, listener: Listener): void {
    const list = this.listeners.get(method)
    if (list) list.push(listener)
    else this.listeners.set(method, [listener])
  }

  close(): void {
    this.socket.terminate()
  }

  private dispatch(msg: {id?: number; method?: string; params?: Params; result?: Params; error?: {message: string}; sessionId?: string}): void {
    if (msg.id !== undefined) {
      const p = this.pending.get(msg.id)
      if (!p) return
      this.pending.delete(msg.id)
      if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`))
      else p.resolve(msg.result ?? {})
      return
    }
    for (const l of this.listeners.get(msg.method ?? '') ?? []) l(msg.params ?? {}, msg.sessionId)
  }
}

interface RemoteObject {
  type: string
  value?: unknown
  description?: string
}

/** One page (a target attached in flat mode), with its console and uncaught errors collected. */
export class CdpPage {
  private console = ''

  constructor(
    private readonly cdp: CdpConnection,
    readonly sessionId: string,
  ) {
    cdp.on('Runtime.consoleAPICalled', (p, s) => {
      if (s !== sessionId) return
      const args = (p.args as RemoteObject[]).map(a => (a.value !== undefined ? String(a.value) : (a.description ?? a.type)))
      this.log(`console.${p.type}: ${args.join(' ')}`)
    })
    cdp.on('Runtime.exceptionThrown', (p, s) => {
      if (s !== sessionId) return
      const d = p.exceptionDetails as {text: string; exception?: RemoteObject}
      this.log(`uncaught: ${d.exception?.description ?? d.text}`)
    })
    cdp.on('Log.entryAdded', (p, s) => {
      if (s !== sessionId) return
      const e = p.entry as {level: string; source: string; text: string; url?: string}
      this.log(`log.${e.level} (${e.source}): ${e.text}${e.url ? ` ${e.url}` : ''}`)
    })
  }

  send<T = Params>(method: string, params: Params = {}): Promise<T> {
    return this.cdp.send<T>(method, params, this.sessionId)
  }

  /** Evaluates `expression` in the page (awaiting a Promise) and returns its value as JSON. */
  async evaluate<T>(expression: string): Promise<T> {
    const r = await this.send<{result: RemoteObject; exceptionDetails?: {text: string; exception?: RemoteObject}}>('Runtime.evaluate', {
      expression,
      awaitPromise: true,
      returnByValue: true,
    })
    if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`)
    return r.result.value as T
  }

  consoleOutput(): string {
    return this.console
  }

  private log(line: string): void {
    this.console = keepTail(`${this.console}${line}\n`)
  }
}

/** A running Chromium: its DevTools connection, its stderr, and a kill for its process group. */
export interface Chromium {
  child: ChildProcess
  cdp: CdpConnection
  stderr(): string
  /** Opens a blank page in a new target and attaches to it, with Runtime and Log events on. */
  newPage(): Promise<CdpPage>
  /** SIGKILL to the browser's process group; resolves once the browser process is reaped. */
  kill(): Promise<void>
}

/**
 * Starts headless Chromium on a DevTools port of its choosing (read from its stderr). The
 * browser leads its own process group so that kill() also ends its renderer and GPU processes.
 */
export async function launchChromium(executable: string, userDataDir: string, extraArgs: string[], timeoutMs: number): Promise<Chromium> {
  const args = [
    '--headless=new',
    // Our own pages only; the sandbox needs user namespaces that containers often lack, and
    // Chromium refuses to run as root with it.
    '--no-sandbox',
    `--user-data-dir=${userDataDir}`,
    '--remote-debugging-port=0',
    '--no-first-run',
    '--no-default-browser-check',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-extensions',
    '--mute-audio',
    ...extraArgs,
    'about:blank',
  ]
  const child = spawn(executable, args, {detached: true, stdio: ['ignore', 'ignore', 'pipe']})
  let stderr = ''
  const kill = (): Promise<void> => killGroup(child)
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`chromium: no DevTools address within ${timeoutMs / 1000} s; stderr:\n${stderr}`)), timeoutMs)
      child.stderr!.on('data', d => {
        stderr = keepTail(stderr + d)
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(stderr)
        if (m) {
          clearTimeout(timer)
          resolve(m[1])
        }
      })
      child.once('error', e => {
        clearTimeout(timer)
        reject(e)
      })
      child.once('exit', code => {
        clearTimeout(timer)
        reject(new Error(`chromium exited (${code}) before DevTools listened; stderr:\n${stderr}`))
      })
    })
    const cdp = await CdpConnection.connect(url)
    const newPage = async (): Promise<CdpPage> => {
      const {targetId} = await cdp.send<{targetId: string}>('Target.createTarget', {url: 'about:blank'})
      const {sessionId} = await cdp.send<{sessionId: string}>('Target.attachToTarget', {targetId, flatten: true})
      const page = new CdpPage(cdp, sessionId)
      await Promise.all([page.send('Runtime.enable'), page.send('Log.enable'), page.send('Page.enable')])
      return page
    }
    return {
      child,
      cdp,
      stderr: () => stderr,
      newPage,
      kill: () => {
        cdp.close()
        return kill()
      },
    }
  } catch (e) {
    await kill()
    throw e
  }
}

/**
 * SIGKILL to the process group `child` leads (spawned with detached: true), then waits for
 * `child` to be reaped, so that nothing is left behind when the caller exits.
 */
export function killGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  try {
    process.kill(-child.pid!, 'SIGKILL')
  } catch {
    return Promise.resolve() // already gone
  }
  return exited
}
