// The peer: @tus/server with @tus/s3-store, configured like rindle_tus in the
// benchmarks (same part size, same S3). Configuration comes from the
// environment; prints "listening <port>" once it accepts connections.
import http from 'node:http'
import { Server } from '@tus/server'
import { S3Store } from '@tus/s3-store'

const env = process.env
const port = Number(env.PEER_PORT || 1080)
const host = env.PEER_HOST || '127.0.0.1'
const partSize = Number(env.PEER_PART_SIZE || 8 * 1024 * 1024)

const store = new S3Store({
  partSize,
  s3ClientConfig: {
    bucket: env.AWS_STORAGE_BUCKET_NAME,
    region: env.AWS_S3_REGION_NAME || 'us-east-1',
    endpoint: env.AWS_S3_ENDPOINT_URL,
    forcePathStyle: true,
    credentials: {
      accessKeyId: env.AWS_ACCESS_KEY_ID || 'rindle',
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY || 'rindle-secret'
    },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED'
  }
})

const tus = new Server({ path: '/files', datastore: store })
const server = http.createServer((req, res) => tus.handle(req, res))
// A 1 GiB PATCH must not be cut by Node's default 5-minute request timeout.
server.requestTimeout = 0
server.keepAliveTimeout = 75_000
server.listen(port, host, () => {
  console.log(`listening ${server.address().port}`)
})

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close()
    server.closeAllConnections()
    process.exit(0)
  })
}
