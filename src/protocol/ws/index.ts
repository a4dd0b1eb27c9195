export {MessageError} from './json-scanner.js'
export * from './request.js'
export * from './response.js'
