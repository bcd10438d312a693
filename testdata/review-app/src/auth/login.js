// An AI-generated login handler: it signs a session token, so a person
// should look at it before it ships.
const crypto = require("crypto");

module.exports = function login(user) {
  const payload = Buffer.from(JSON.stringify({ sub: user.id })).toString("base64url");
  const sig = crypto.createHmac("sha256", process.env.SESSION_SECRET).update(payload).digest("base64url");
  return `${payload}.${sig}`;
};
