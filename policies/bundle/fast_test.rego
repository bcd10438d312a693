package tollgate.fast_test

import data.tollgate.fast

scan := {"app": "todo", "commit": "", "labels": [], "full": false}

test_clean_scan_passes if {
	d := fast.decision with input as {"scan": scan, "secrets": []}
	d.verdict == "pass"
	d.reasons == []
}

test_any_secret_blocks if {
	s := {"rule": "github-pat", "file": "src/config.js", "line": 3, "fingerprint": "tgfp1:5d1c0b3a9e7f44e2a6b8c0d2e4f61728"}
	d := fast.decision with input as {"scan": scan, "secrets": [s]}
	d.verdict == "block"
	d.reasons[0].policy == "secrets.none"
	d.reasons[0].verdict == "block"
	contains(d.reasons[0].message, "src/config.js:3")
}

test_bad_app_name_blocks if {
	d := fast.decision with input as {"scan": object.union(scan, {"app": "../Evil App"}), "secrets": []}
	d.verdict == "block"
	d.reasons[0].policy == "metadata.app_name"
}

test_good_commit_passes if {
	d := fast.decision with input as {"scan": object.union(scan, {"commit": "0123abc"}), "secrets": []}
	d.verdict == "pass"
}

test_bad_commit_blocks if {
	d := fast.decision with input as {"scan": object.union(scan, {"commit": "main; rm -rf"}), "secrets": []}
	d.verdict == "block"
	d.reasons[0].policy == "metadata.commit"
}

test_too_many_labels_block if {
	labels := [sprintf("l%d", [i]) | some i in numbers.range(1, 40)]
	d := fast.decision with input as {"scan": object.union(scan, {"labels": labels}), "secrets": []}
	d.verdict == "block"
	d.reasons[0].policy == "metadata.labels"
}

test_do_not_ship_label_blocks if {
	d := fast.decision with input as {"scan": object.union(scan, {"labels": ["do-not-ship"]}), "secrets": []}
	d.verdict == "block"
	d.reasons[0].policy == "metadata.do_not_ship"
}
