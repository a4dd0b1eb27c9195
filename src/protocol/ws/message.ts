/**
 * The WebTorrent message codec's old entry point, split into request.ts (parsing), response.ts
 * (writing) and json-scanner.ts. Kept only so that src/server/ws/worker.ts builds unchanged while
 * it is being split: once it imports from ./index.js, delete this file.
 */
export * from './index.js'
