// Runtime configuration for the todo API.
//
// FAKE SECRET PLANTED FOR THE TOLLGATE EXAMPLE: the GitHub token below is a
// random, never-issued value that imitates the classic "hard-coded credential"
// mistake. tollgate's secret scan (gitleaks rule github-pat) must flag it.
// It grants access to nothing.
const minimist = require('minimist');

const argv = minimist(process.argv.slice(2));

module.exports = {
  port: Number(argv.port || process.env.PORT || 3000),
  logFormat: argv.log || 'dev',
  // Used to open an issue on the team's tracker when a todo is escalated.
  githubToken: process.env.GITHUB_TOKEN || 'ghp_ksI9swLtjep6iAiTEOF3VdNw3rm1X7LrjjML',
  githubRepo: process.env.GITHUB_REPO || 'example-org/todos',
};
