const jwt = require("jsonwebtoken");
module.exports = (user) => jwt.sign({ sub: user.id }, process.env.JWT_SECRET);
