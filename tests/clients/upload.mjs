// Uploads one file with tus-js-client (its Node file reader and HTTP stack)
// and reports what happened as JSON lines on stdout, for the Python tests.
//
//   node upload.mjs '<json options>'
//
// Options:
//   endpoint        the collection URL (POST target)
//   file            path of the file to upload
//   chunkSize       bytes per PATCH; null means one request (Infinity)
//   metadata        Upload-Metadata as an object
//   urlStorage      path of a JSON file remembering upload URLs by fingerprint
//   resume          true: continue the upload remembered in urlStorage
//   uploadUrl       continue this upload instead of creating one
//   protocol        tus-js-client's protocol option: 'tus-v1' (its default, also
//                   when absent), 'ietf-draft-03' (Upload-Draft-Interop-Version
//                   5) or 'ietf-draft-05' (version 6)
//   dropAfterBytes  the network fails once this many bytes (headers and
//                   bodies of all requests) have gone out: the rest is lost
//   dropOnce        with dropAfterBytes: the network fails once and comes back.
//                   The connection that went over the limit is destroyed once
//                   its last kept bytes are flushed (the client reads no answer
//                   on it, as on a network that went away), and the connections
//                   opened after it work normally, so the retry logic can resume
//   retryDelays     absent: tus-js-client's default ([0, 1000, 3000, 5000]);
//                   present, null included: passed as given (null: no retry)
//   progressStep    emit a progress event each time this many more bytes went
//                   out (and whenever the position goes back, as on a retry)
//   uploadDataDuringCreation, parallelUploads: as in tus-js-client
//
// Events, one JSON object a line, each with t (ms since the driver started):
// {"event": "response", method, status, offset} for every response (with a
// protocol option also complete, the response's Upload-Complete, and
// sentComplete, the request's, each a string or null);
// {"event": "url", url} whenever the upload URL becomes known (created or
// resumed); {"event": "retry", attempt, status, retry, message} whenever the
// retry logic weighs an error (what tus-js-client would decide on its own:
// the observer returns its default decision, so behaviour is unchanged);
// {"event": "progress", bytes} if progressStep is set; then
// {"event": "success", url} or {"event": "error", url, message}.
import * as http from 'node:http';
import * as fs from 'node:fs';

import { DefaultHttpStack, FileUrlStorage, Upload, defaultOptions } from 'tus-js-client';

const options = JSON.parse(process.argv[2]);
const started = Date.now();
const emit = (event) => process.stdout.write(`${JSON.stringify({ ...event, t: Date.now() - started })}\n`);

// A keep-alive agent whose connections can be cut after a number of bytes,
// as a failing network would: what was written before reaches the server,
// then the connection is closed and anything written later is lost.
// With once, only the connection that goes over the limit fails (destroyed
// after its kept bytes are flushed); the network works again afterwards.
class DroppingAgent extends http.Agent {
  constructor(limit, once) {
    super({ keepAlive: true });
    this.remaining = limit ?? Number.POSITIVE_INFINITY;
    this.once = Boolean(once);
  }

  createConnection(connectOptions, callback) {
    const socket = super.createConnection(connectOptions, callback);
    const write = socket.write.bind(socket);
    let cut = false;
    socket.write = (chunk, encoding, done) => {
      const cb = typeof encoding === 'function' ? encoding : done;
      const data = typeof chunk === 'string' ? Buffer.from(chunk, typeof encoding === 'string' ? encoding : 'utf8') : chunk;
      if (cut || (!this.once && this.remaining <= 0)) {
        if (cb) process.nextTick(cb);
        return true;
      }
      if (data.length < this.remaining) {
        this.remaining -= data.length;
        return write(data, cb);
      }
      const kept = data.subarray(0, this.remaining);
      cut = true;
      if (this.once) {
        this.remaining = Number.POSITIVE_INFINITY;
        write(kept, () => socket.destroy(new Error('network failed (dropOnce)')));
      } else {
        this.remaining = 0;
        write(kept);
        socket.end();
      }
      if (cb) process.nextTick(cb);
      return true;
    };
    return socket;
  }
}

const agent = new DroppingAgent(options.dropAfterBytes, options.dropOnce);
const chunkSize = options.chunkSize == null ? Number.POSITIVE_INFINITY : options.chunkSize;
// Only an explicit retryDelays (null too) replaces tus-js-client's default.
const retryOption = 'retryDelays' in options ? { retryDelays: options.retryDelays } : {};
// Only an explicit protocol replaces tus-js-client's default (tus-v1).
const protocolOption = options.protocol == null ? {} : { protocol: options.protocol };

let lastProgress = null;
const onProgress = options.progressStep == null ? undefined : (bytes) => {
  if (lastProgress === null || bytes < lastProgress || bytes - lastProgress >= options.progressStep) {
    lastProgress = bytes;
    emit({ event: 'progress', bytes });
  }
};

const upload = new Upload(fs.createReadStream(options.file), {
  endpoint: options.endpoint,
  uploadUrl: options.uploadUrl ?? null,
  chunkSize,
  metadata: options.metadata ?? {},
  ...retryOption,
  ...protocolOption,
  uploadDataDuringCreation: Boolean(options.uploadDataDuringCreation),
  parallelUploads: options.parallelUploads ?? 1,
  httpStack: new DefaultHttpStack({ agent }),
  urlStorage: options.urlStorage ? new FileUrlStorage(options.urlStorage) : undefined,
  storeFingerprintForResuming: Boolean(options.urlStorage),
  removeFingerprintOnSuccess: false,
  onProgress,
  onUploadUrlAvailable() {
    emit({ event: 'url', url: upload.url });
  },
  onShouldRetry(error, attempt, retryOptions) {
    const retry = defaultOptions.onShouldRetry(error, attempt, retryOptions);
    const response = error.originalResponse;
    emit({ event: 'retry', attempt, status: response ? response.getStatus() : null, retry, message: String(error) });
    return retry;
  },
  onAfterResponse(req, res) {
    const offset = res.getHeader('Upload-Offset');
    const draft = options.protocol == null ? {} : {
      complete: res.getHeader('Upload-Complete') ?? null,
      sentComplete: req.getHeader('Upload-Complete') ?? null,
    };
    emit({
      event: 'response',
      method: req.getMethod(),
      status: res.getStatus(),
      offset: offset === undefined ? null : Number(offset),
      ...draft,
    });
  },
  onSuccess() {
    emit({ event: 'success', url: upload.url });
    agent.destroy();
  },
  onError(error) {
    emit({ event: 'error', url: upload.url, message: String(error) });
    agent.destroy();
    process.exitCode = 1;
  },
});

if (options.resume) {
  const previous = await upload.findPreviousUploads();
  if (previous.length === 0) {
    emit({ event: 'error', message: 'no previous upload remembered in urlStorage' });
    process.exit(1);
  }
  upload.resumeFromPreviousUpload(previous[0]);
}
upload.start();
