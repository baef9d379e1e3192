package kube

import (
	"os"
	"testing"

	"github.com/ebeautything/greenlight/internal/testcluster"
)

var cluster testcluster.Shared

func TestMain(m *testing.M) { os.Exit(testcluster.Main(m, &cluster)) }
