// A tiny HTTP service; the point of this example is its deployment files.
const http = require("http");

http
  .createServer((req, res) => res.end("ok\n"))
  .listen(3000);
