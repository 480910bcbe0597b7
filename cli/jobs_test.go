package cli

import (
	"strings"
	"testing"
)

const cronManifest = `apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
spec:
  schedule: "0 3 * * *"
  suspend: true
  jobTemplate:
    metadata:
      labels: {app: nightly}
    spec:
      suspend: true
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: backup
            image: busybox:1.36
`

func TestCreateJobFromCronJob(t *testing.T) {
	c := startCluster(t)
	c.must("apply", "-f", writeFile(t, "cron.yaml", cronManifest))
	out := c.must("get", "cronjobs")
	for _, want := range []string{"NAME", "SCHEDULE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "nightly", "0 3 * * *", "true", "<none>"} {
		if !strings.Contains(out, want) {
			t.Errorf("get cronjobs lacks %q:\n%s", want, out)
		}
	}
	if out := c.must("create", "job", "now", "--from", "cronjob/nightly"); !strings.Contains(out, "job.batch/now created") {
		t.Errorf("create job: %s", out)
	}
	out = c.must("get", "job", "now", "-o", "yaml")
	for _, want := range []string{"cronjob.kubernetes.io/instantiate: manual", "kind: CronJob", "name: nightly", "app: nightly"} {
		if !strings.Contains(out, want) {
			t.Errorf("job lacks %q:\n%s", want, out)
		}
	}
	if out := c.must("get", "jobs"); !strings.Contains(out, "COMPLETIONS") || !strings.Contains(out, "0/1") {
		t.Errorf("get jobs:\n%s", out)
	}
	if out := c.must("describe", "job", "now"); !strings.Contains(out, "Events:") {
		t.Errorf("describe job has no Events section:\n%s", out)
	}
	if _, _, err := c.run("", "create", "job", "x", "--from", "pod/web"); err == nil || !strings.Contains(err.Error(), "only cronjob/NAME") {
		t.Errorf("--from pod/web: %v", err)
	}
}
