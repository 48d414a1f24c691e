package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The runbooks in docs/operations/ name the tests that carry out their
// procedures; these tests keep them from rotting: every runbook has its
// sections and an "Exercised by" paragraph, every test it names exists
// (`controllers.TestX` as a test function, `TestHelm/Step (testStep)` as a
// step of test/e2e), and every runbook_url of the alert rules points at a
// runbook heading that exists.

const opsDir = "../../docs/operations"

// runbooks are the files the alerts link to (config/prometheus, the chart).
var runbooks = []string{"quorum-loss.md", "lost-disk.md", "stuck-membership-change.md", "operator-upgrade.md", "restore-from-backup.md", "tombstone-gc.md"}

// testFuncs returns the names of every func in the repository's _test.go
// files (every module, every build tag) and the step names of test/e2e's
// step tables ({"StepName", fn}).
func testFuncs(t *testing.T) (funcs, steps map[string]bool) {
	t.Helper()
	funcs, steps = map[string]bool{}, map[string]bool{}
	funcRE := regexp.MustCompile(`(?m)^func (\w+)\(`)
	stepRE := regexp.MustCompile(`\{"(\w+)", (\w+)\}`)
	err := filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "bin" || d.Name() == "tmp" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range funcRE.FindAllSubmatch(b, -1) {
			funcs[string(m[1])] = true
		}
		for _, m := range stepRE.FindAllSubmatch(b, -1) {
			steps[string(m[1])+" "+string(m[2])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return funcs, steps
}

// anchor is GitHub's anchor of a Markdown heading.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

func headings(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if h, ok := strings.CutPrefix(line, "#"); ok {
			out = append(out, anchor(strings.TrimLeft(h, "#")))
		}
	}
	return out
}

func TestRunbooksNameTestsThatExist(t *testing.T) {
	funcs, steps := testFuncs(t)
	unitRE := regexp.MustCompile("`(?:[\\w/.-]+\\.)?(Test\\w+)`")
	e2eRE := regexp.MustCompile("`TestHelm/(\\w+)`\\s*\\(`(test\\w+)`")
	for _, name := range runbooks {
		b, err := os.ReadFile(filepath.Join(opsDir, name))
		if err != nil {
			t.Fatalf("runbook %s: %v", name, err)
		}
		text := string(b)
		_, exercised, ok := strings.Cut(text, "**Exercised by:**")
		if !ok {
			t.Errorf("%s has no **Exercised by:** paragraph naming the tests of its procedure", name)
			continue
		}
		exercised, _, _ = strings.Cut(exercised, "\n\n")
		var named int
		for _, m := range unitRE.FindAllStringSubmatch(exercised, -1) {
			named++
			if m[1] != "TestHelm" && !funcs[m[1]] {
				t.Errorf("%s names %s, which is not a test function of this repository", name, m[1])
			}
		}
		for _, m := range e2eRE.FindAllStringSubmatch(exercised, -1) {
			named++
			if !steps[m[1]+" "+m[2]] {
				t.Errorf("%s names the e2e step TestHelm/%s (%s), which test/e2e does not run", name, m[1], m[2])
			}
		}
		if named == 0 {
			t.Errorf("%s: its Exercised by paragraph names no test", name)
		}
		if !strings.Contains(text, "Verify") {
			t.Errorf("%s says nothing about how to verify the fix", name)
		}
	}
}

func TestAlertRunbookLinksExist(t *testing.T) {
	urlRE := regexp.MustCompile(`docs/operations/([\w.-]+\.md)(?:#([\w-]+))?`)
	var checked int
	for _, rules := range []string{"../../config/prometheus", "../../charts/kshaka-operator"} {
		err := filepath.WalkDir(rules, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !isRuleFile(path) {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range urlRE.FindAllStringSubmatch(string(b), -1) {
				checked++
				doc, err := os.ReadFile(filepath.Join(opsDir, m[1]))
				if err != nil {
					t.Errorf("%s links %s: %v", path, m[0], err)
					continue
				}
				if m[2] != "" && !slices.Contains(headings(string(doc)), m[2]) {
					t.Errorf("%s links %s: no heading of %s has the anchor %q (headings: %v)", path, m[0], m[1], m[2], headings(string(doc)))
				}
			}
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	t.Logf("%d runbook links checked", checked)
	// The headings the alerts link to (docs/operations/alerts.md), so that
	// they exist before and after the rules do.
	for file, want := range map[string][]string{
		"quorum-loss.md":             {"quorum-lost", "one-failure-from-quorum-loss"},
		"stuck-membership-change.md": {"membership-change-stuck", "rescan-not-progressing"},
		"lost-disk.md":               {"acceptor-out-of-service-after-a-storage-error"},
		"operator-upgrade.md":        {"operator-down"},
		"tombstone-gc.md":            {"tombstone-gc-failing"},
	} {
		b, err := os.ReadFile(filepath.Join(opsDir, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range want {
			if !slices.Contains(headings(string(b)), a) {
				t.Errorf("%s has no heading with anchor #%s", file, a)
			}
		}
	}
}

// isRuleFile: a file that may hold alert rules (YAML, a Helm template, a
// dashboard).
func isRuleFile(path string) bool {
	return slices.Contains([]string{".yaml", ".tpl", ".json"}, filepath.Ext(path))
}
