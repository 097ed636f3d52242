// The client of the fault measurements (benchmarks/faults.py): one upload with
// tus-js-client under Node, with tus-js-client's DEFAULT retry settings
// (retryDelays [0, 1000, 3000, 5000]: not passed) and no chunkSize (one PATCH
// for the whole body unless a fault cuts it), printing a timeline.
//
//   node faultclient.mjs ENDPOINT --size N --seed S --mark M
//
// Prints one JSON object a line, each with `t`: wall-clock milliseconds
// (performance.timeOrigin + performance.now(), the clock of Python's time.time()):
//   {"ev": "req", method, url}                 onBeforeRequest
//   {"ev": "res", method, status, offset, location}   onAfterResponse
//   {"ev": "slice", index, start}              a request body starts being read from the source
//   {"ev": "cross", index, start, pos}         the first bytes past M of a body are handed on
//                                              (pos: the body's position after that piece)
//   {"ev": "progress", bytes, first}           onProgress: the first call of each PATCH, and the
//                                              first past M (tus-js-client throttles it to 100 ms)
//   {"ev": "success", url} / {"ev": "error", message}
// The bytes are the generator's (gen.mjs); a body may restart at any offset
// (a retry resends from the offset the server reports), so the stored
// object's expected SHA-256 is the generator's own, computed by the caller.
import { parseArgs } from 'node:util'
import { Readable } from 'node:stream'
import * as tus from 'tus-js-client'
import { pieces } from './gen.mjs'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    size: { type: 'string' },
    seed: { type: 'string', default: '0' },
    mark: { type: 'string', default: '0' }
  }
})
const endpoint = positionals[0]
const size = Number(values.size)
const seed = Number(values.seed)
const mark = Number(values.mark)

const now = () => performance.timeOrigin + performance.now()
const emit = (event) => process.stdout.write(JSON.stringify({ t: now(), ...event }) + '\n')

class RestartableSource {
  constructor () {
    this.size = size
    this.slices = 0
  }

  slice (start, end) {
    end = Math.min(end, this.size)
    const index = this.slices++
    const iterator = pieces(seed, start, end)
    let position = start
    let crossed = false
    let announced = false
    const body = new Readable({
      read () {
        if (!announced) {
          announced = true
          emit({ ev: 'slice', index, start })
        }
        const next = iterator.next()
        if (next.done) {
          this.push(null)
          return
        }
        position += next.value.length
        if (!crossed && position > mark) {
          crossed = true
          emit({ ev: 'cross', index, start, pos: position })
        }
        this.push(next.value)
      }
    })
    body.size = end - start
    return Promise.resolve({ value: body, done: end >= this.size })
  }

  close () {}
}

// The generator's pool is built on first use (a few hundred ms): before the upload, not during it.
pieces(seed, 0, 1).next()
const source = new RestartableSource()
let patchProgress = null // per PATCH: null until its first progress call
let pastMark = false

const upload = new tus.Upload(Buffer.alloc(0), {
  endpoint,
  uploadSize: size,
  storeFingerprintForResuming: false,
  fingerprint: () => Promise.resolve(null),
  fileReader: { openFile: () => Promise.resolve(source) },
  onBeforeRequest: (req) => {
    if (req.getMethod() === 'PATCH') {
      patchProgress = null
      pastMark = false
    }
    emit({ ev: 'req', method: req.getMethod(), url: req.getURL() })
  },
  onAfterResponse: (req, res) => {
    emit({
      ev: 'res',
      method: req.getMethod(),
      status: res.getStatus(),
      offset: res.getHeader('Upload-Offset') ?? null,
      location: res.getHeader('Location') ?? null
    })
  },
  onProgress: (bytes) => {
    const first = patchProgress === null
    patchProgress = bytes
    if (first || (!pastMark && bytes > mark)) {
      pastMark = pastMark || bytes > mark
      emit({ ev: 'progress', bytes, first })
    }
  },
  onError: (err) => {
    emit({ ev: 'error', message: String(err) })
    process.exit(1)
  },
  onSuccess: () => {
    emit({ ev: 'success', url: upload.url })
    process.exit(0)
  }
})
upload.start()
