const _ = require("lodash");
module.exports = (xs) => _.uniq(xs);
