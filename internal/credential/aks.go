package credential

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"golang.org/x/oauth2"
)

// aksServerID is the AKS AAD server application, the audience kubelogin
// uses when the kubeconfig does not name one.
const aksServerID = "6dae42f8-4368-4678-94ff-3960e28e3630"

// aksModes are kubelogin's login modes greenlight can stand in for.
const aksModes = "--login workloadidentity (AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE) or --login spn (a client secret in AAD_SERVICE_PRINCIPAL_CLIENT_SECRET or AZURE_CLIENT_SECRET); convert the kubeconfig with kubelogin convert-kubeconfig -l workloadidentity or -l spn"

type aksSource struct {
	cred  azcore.TokenCredential
	scope string
}

func newAKS(_ context.Context, env Env, a args) (oauth2.TokenSource, error) {
	const plugin = "kubelogin"
	mode := a.flag("--login", "-l")
	if mode == "" {
		mode = firstSet(env, "AAD_LOGIN_METHOD")
	}
	if mode == "" {
		mode = "devicecode"
	}
	serverID := a.flag("--server-id")
	if serverID == "" {
		serverID = aksServerID
	}
	opts := azcore.ClientOptions{Transport: env.client()}
	if host := firstSet(env, "AZURE_AUTHORITY_HOST"); host != "" {
		opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: host, Services: map[cloud.ServiceName]cloud.ServiceConfiguration{}}
	} else if e := strings.ToLower(a.flag("--environment", "-e")); e != "" {
		switch e {
		case "azurechinacloud":
			opts.Cloud = cloud.AzureChina
		case "azureusgovernment", "azureusgovernmentcloud":
			opts.Cloud = cloud.AzureGovernment
		default:
			opts.Cloud = cloud.AzurePublic
		}
	}
	var (
		cred azcore.TokenCredential
		err  error
	)
	switch mode {
	case "workloadidentity":
		clientID := firstSet(env, "AZURE_CLIENT_ID")
		if v := a.flag("--client-id"); v != "" {
			clientID = v
		}
		tenantID := firstSet(env, "AZURE_TENANT_ID")
		if v := a.flag("--tenant-id", "-t"); v != "" {
			tenantID = v
		}
		file := firstSet(env, "AZURE_FEDERATED_TOKEN_FILE")
		if v := a.flag("--federated-token-file"); v != "" {
			file = v
		}
		if clientID == "" || tenantID == "" || file == "" {
			return nil, &ExecError{Plugin: plugin, Problem: "its workloadidentity login has no client ID, tenant ID or federated token file",
				LookedFor: "--client-id or AZURE_CLIENT_ID, --tenant-id or AZURE_TENANT_ID, and AZURE_FEDERATED_TOKEN_FILE"}
		}
		cred, err = azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: opts, ClientID: clientID, TenantID: tenantID, TokenFilePath: containerPath(env, file), DisableInstanceDiscovery: true,
		})
	case "spn":
		clientID := firstSet(env, "AAD_SERVICE_PRINCIPAL_CLIENT_ID", "AZURE_CLIENT_ID")
		if v := a.flag("--client-id"); v != "" {
			clientID = v
		}
		tenantID := firstSet(env, "AZURE_TENANT_ID")
		if v := a.flag("--tenant-id", "-t"); v != "" {
			tenantID = v
		}
		secret := firstSet(env, "AAD_SERVICE_PRINCIPAL_CLIENT_SECRET", "AZURE_CLIENT_SECRET")
		if clientID == "" || tenantID == "" || secret == "" {
			return nil, &ExecError{Plugin: plugin, Problem: "its spn login has no client ID, tenant ID or client secret",
				LookedFor: "--client-id, AAD_SERVICE_PRINCIPAL_CLIENT_ID or AZURE_CLIENT_ID; --tenant-id or AZURE_TENANT_ID; AAD_SERVICE_PRINCIPAL_CLIENT_SECRET or AZURE_CLIENT_SECRET"}
		}
		cred, err = azidentity.NewClientSecretCredential(tenantID, clientID, secret, &azidentity.ClientSecretCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: true})
	case "azurecli":
		return nil, &ExecError{Plugin: plugin, Problem: "its azurecli login needs the Azure CLI's login, which does not exist inside greenlight's container; use " + aksModes}
	default:
		return nil, &ExecError{Plugin: plugin, Problem: fmt.Sprintf("its %q login needs a person or a machine identity greenlight does not have; use %s", mode, aksModes)}
	}
	if err != nil {
		return nil, &ExecError{Plugin: plugin, Problem: "the Azure credential cannot be made: " + err.Error()}
	}
	return &aksSource{cred: cred, scope: serverID + "/.default"}, nil
}

func (s *aksSource) Token() (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := s.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{s.scope}})
	if err != nil {
		return nil, fmt.Errorf("get the AKS token from Microsoft Entra ID: %w", err)
	}
	return &oauth2.Token{AccessToken: tok.Token, TokenType: "Bearer", Expiry: tok.ExpiresOn}, nil
}
