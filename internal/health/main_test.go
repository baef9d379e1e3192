package health_test

import (
	"os"
	"testing"

	"github.com/ebeautything/greenlight/internal/testcluster"
)

// cluster is started by the first test that needs it and stopped after all.
var cluster testcluster.Shared

func TestMain(m *testing.M) { os.Exit(testcluster.Main(m, &cluster)) }
