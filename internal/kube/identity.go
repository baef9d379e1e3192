package kube

import (
	"context"
	"fmt"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// WhoAmI asks the API server, with a SelfSubjectReview, which user the
// client's credential is mapped to, as `user "x" (groups a, b)`.
func WhoAmI(ctx context.Context, client kubernetes.Interface) (string, error) {
	review, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("ask who the credential is: %w", ClassifyAPIError(err))
	}
	u := review.Status.UserInfo
	return fmt.Sprintf("user %q (groups %s)", u.Username, strings.Join(u.Groups, ", ")), nil
}
